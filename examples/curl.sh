#!/bin/sh
# The socket-server's server API with curl, with the key the socket-server
# holds as api.key.
#   sh curl.sh publish TARGET EVENT JSON    e.g. publish user:gonzalo notice '{"text":"hi"}'
#   sh curl.sh revoke SID UNTIL             at logout; UNTIL: the exp of the session's last token
#   sh curl.sh presence [user:USERNAME]
# Each prints the API's JSON answer; on a refusal (its JSON too) curl exits with 22.
set -eu
post() { # PATH JSON
  curl --silent --show-error --fail-with-body --max-time 10 \
    -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/json" \
    --data-binary "$2" "${SOCKET_URL%/}$1"
  echo
}
get() { # PATH
  curl --silent --show-error --fail-with-body --max-time 10 \
    -H "Authorization: Bearer $API_KEY" "${SOCKET_URL%/}$1"
  echo
}
case "${1:-}/$#" in
  publish/4)  post /api/publish "{\"to\": \"$2\", \"event\": \"$3\", \"data\": $4}" ;;
  revoke/3)   post /api/sessions/revoke "{\"sid\": \"$2\", \"until\": $3}" ;;
  presence/1) get /api/presence ;;
  presence/2) get "/api/presence/$2" ;;
  *) echo "usage: sh curl.sh publish TARGET EVENT JSON | revoke SID UNTIL | presence [user:USERNAME]" >&2
     exit 2 ;;
esac
