<?php
// A socket token for a logged-in user, made by the PHP application itself:
// HS256 with the key the socket-server holds as jwt.secret.
//   JWT_SECRET=… php token.php USERNAME SID      prints the token

// A new login session id: make one at login, keep it in the session
// ($_SESSION['socket_sid']) and put it in every token of that login.
function new_session_id(): string
{
    return bin2hex(random_bytes(16));
}

function base64url(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

// $ttl: at most the socket-server's jwt.ttl_secs (300 by default).
function socket_token(string $username, string $sid, int $ttl = 300): string
{
    $now = time();
    $header = ['alg' => 'HS256', 'typ' => 'JWT'];
    $claims = [
        'sub' => $username,
        'user' => ['username' => $username],
        'iat' => $now,
        'exp' => $now + $ttl,
        'iss' => getenv('JWT_ISSUER') ?: 'web-frontend',    // jwt.issuer
        'aud' => getenv('JWT_AUDIENCE') ?: 'socket-server', // jwt.audience
        'sid' => $sid,
        'jti' => bin2hex(random_bytes(16)),
    ];
    $input = base64url(json_encode($header, JSON_THROW_ON_ERROR)) . '.'
        . base64url(json_encode($claims, JSON_THROW_ON_ERROR));
    $signature = hash_hmac('sha256', $input, getenv('JWT_SECRET'), true);
    return $input . '.' . base64url($signature);
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    if ($argc !== 3 || getenv('JWT_SECRET') === false) {
        fwrite(STDERR, "usage: JWT_SECRET=… php token.php USERNAME SID\n");
        exit(2);
    }
    echo socket_token($argv[1], $argv[2]), "\n";
}
