<?php
// A receiver of authbridge's presence webhooks: it checks each request as the
// Standard Webhooks specification says, then handles the event.
//
//   WEBHOOK_SECRET='the value of webhooks.secret' php -S 127.0.0.1:8000 verify.php
//
// (Under php-fpm or Apache, the same file is the endpoint's script.)

/** The event, if the request is authentic and recent; throws otherwise. */
function verify_webhook(string $secret, array $headers, string $body): array
{
    $headers = array_change_key_case($headers, CASE_LOWER);
    $id = $headers['webhook-id'] ?? '';
    $timestamp = $headers['webhook-timestamp'] ?? '';
    $signatures = $headers['webhook-signature'] ?? '';
    if ($secret === '' || $id === '' || $timestamp === '' || $signatures === '') {
        throw new UnexpectedValueException('missing webhook headers (or secret)');
    }
    // Replays: refuse what was signed more than 5 minutes ago (or ahead).
    if (!preg_match('/^[0-9]+$/', $timestamp) || abs(time() - (int) $timestamp) > 300) {
        throw new UnexpectedValueException('timestamp too old or too new');
    }
    $expected = 'v1,' . base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $secret, true));
    // A space-separated list of "v1,SIGNATURE": one match is enough.
    foreach (explode(' ', $signatures) as $signature) {
        if (hash_equals($expected, $signature)) {
            return json_decode($body, true, 16, JSON_THROW_ON_ERROR);
        }
    }
    throw new UnexpectedValueException('no valid signature');
}

$headers = getallheaders();
try {
    $event = verify_webhook((string) getenv('WEBHOOK_SECRET'), $headers, file_get_contents('php://input'));
} catch (Exception $error) {
    http_response_code(400); // anything but 2xx: authbridge tries again later
    echo $error->getMessage();
    return;
}
// $event['type'] is 'user.online' or 'user.offline', $event['data']['user'] the
// username. An event may come twice (at least once): skip a webhook-id already
// handled. Answer within 10 s; queue slow work.
$id = array_change_key_case($headers, CASE_LOWER)['webhook-id'];
file_put_contents('php://stdout', json_encode(
    ['id' => $id, 'type' => $event['type'], 'user' => $event['data']['user']],
    JSON_UNESCAPED_UNICODE,
) . "\n");
http_response_code(204);
