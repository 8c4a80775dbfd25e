"""schemathesis hooks for rosterd, loaded through SCHEMATHESIS_HOOKS by
scripts/schemathesis.sh.

The inbound endpoint takes only signed bodies. Every generated request to
it is signed here the way the Airtable script signs (plain scheme:
`X-Signature` = hex HMAC-SHA256(key, raw body)), over exactly the bytes
sent, so its body reaches the parser and the event rules — except when
schemathesis generated the signature headers as a negative (schema-invalid)
case: those are sent as generated, and the server must refuse them.

One event rule depends on the server's clock, which no schema can state:
`occurredAt` may be at most MAX_EVENT_FUTURE_SECS past it
(openapi.yaml documents it). A schema-valid event dated later is dated now
here, as any real sender's would be; negative bodies are left alone.
"""

import datetime
import hashlib
import hmac
import json
import os

import schemathesis
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation

INBOUND = "/api/sync/users/inbound"
SIGNATURE_HEADERS = {"x-signature", "webhook-id", "webhook-timestamp", "webhook-signature"}
SECRET = os.environ["ROSTERD_ST_SECRET"].encode()
MAX_FUTURE = datetime.timedelta(seconds=int(os.environ["ROSTERD_ST_MAX_FUTURE_SECS"]))


def _negative_at(case, location):
    meta = case.meta
    return meta is not None and meta.is_negative_at(location)


def _date_now_if_future(body):
    if not isinstance(body, dict) or not isinstance(body.get("occurredAt"), str):
        return
    try:
        at = datetime.datetime.fromisoformat(body["occurredAt"].replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return
    if at.tzinfo is None:
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    if at > now + MAX_FUTURE:
        body["occurredAt"] = now.isoformat().replace("+00:00", "Z")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != INBOUND or case.method.upper() != "POST":
        return
    if isinstance(case.body, NotSet) or "data" in kwargs or "json" in kwargs:
        return
    if _negative_at(case, ParameterLocation.HEADER):
        return
    if isinstance(case.body, (bytes, bytearray)):
        raw = bytes(case.body)
    else:
        if not _negative_at(case, ParameterLocation.BODY):
            _date_now_if_future(case.body)
        try:
            raw = json.dumps(case.body).encode()
        except (TypeError, ValueError):
            return
    kwargs["data"] = raw
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in SIGNATURE_HEADERS}
    headers["X-Signature"] = hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    case.headers = headers
