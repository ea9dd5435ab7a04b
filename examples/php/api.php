<?php
// The socket-server's server API from PHP (php-curl), with the key the
// socket-server holds as api.key.
//   php api.php publish TARGET EVENT JSON    e.g. publish user:gonzalo notice '{"text":"hi"}'
//   php api.php revoke SID UNTIL             at logout; UNTIL: the exp of the session's last token
//   php api.php presence [user:USERNAME]
// Each prints the API's JSON answer; a refusal goes to stderr, exit status 1.

// The API's answer, decoded; a refusal (4xx, 5xx) is thrown with its body.
function socket_api(string $method, string $path, $body = null): array
{
    $curl = curl_init(rtrim(getenv('SOCKET_URL'), '/') . $path);
    $headers = ['Authorization: Bearer ' . getenv('API_KEY')];
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        curl_setopt($curl, CURLOPT_POSTFIELDS, json_encode($body, JSON_THROW_ON_ERROR));
    }
    curl_setopt_array($curl, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 10,
    ]);
    $answer = curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    $failure = $answer === false ? curl_error($curl) : "$status $answer";
    curl_close($curl);
    if ($status !== 200) {
        throw new RuntimeException("socket API $method $path: $failure");
    }
    return json_decode($answer, true, 512, JSON_THROW_ON_ERROR);
}

// Sends EVENT with $data to a target ("user:NAME", "session:SID", "room:NAME",
// "everyone") or a list of them: ["id" => …, "sockets" => N].
function publish($to, string $event, $data): array
{
    return socket_api('POST', '/api/publish', ['to' => $to, 'event' => $event, 'data' => $data]);
}

// At logout: ends the session's sockets, and refuses its tokens until $until.
function revoke_session(string $sid, int $until): array
{
    return socket_api('POST', '/api/sessions/revoke', ['sid' => $sid, 'until' => $until]);
}

function presence(?string $user = null): array
{
    return socket_api('GET', '/api/presence' . ($user === null ? '' : '/' . rawurlencode($user)));
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $command = ($argv[1] ?? '') . '/' . $argc;
    try {
        $answer = match ($command) {
            // Objects stay objects: '{}' is sent as {}, not [].
            'publish/5' => publish($argv[2], $argv[3], json_decode($argv[4], false, 512, JSON_THROW_ON_ERROR)),
            'revoke/4' => revoke_session($argv[2], (int) $argv[3]),
            'presence/2', 'presence/3' => presence($argv[2] ?? null),
            default => throw new InvalidArgumentException('usage: php api.php publish TARGET EVENT JSON | revoke SID UNTIL | presence [user:USERNAME]'),
        };
        echo json_encode($answer), "\n";
    } catch (Throwable $error) {
        fwrite(STDERR, $error->getMessage() . "\n");
        exit(1);
    }
}
