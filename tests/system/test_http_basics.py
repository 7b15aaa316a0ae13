"""/health, unknown paths and methods."""

import pytest

from m2pg_sys import assert_error, wait_until


def test_health_reports_configured_and_connected_databases(service):
    r = service.health()
    assert r.status == 200, r
    assert isinstance(r.json, dict), r
    assert r.json.get("databases") == 2, r.json
    assert isinstance(r.json.get("connected"), int), r.json
    wait_until(lambda: service.health().json.get("connected") == 2, 5,
               message="/health to report both databases connected")


@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"),
    ("POST", "/nope"),
    ("GET", "/metrics/extra"),
    ("GET", "/page"),
    ("GET", "/index.html"),
])
def test_unknown_path_is_404_with_json_error(service, method, path):
    r = service.request(method, path, body=b"{}" if method == "POST" else None)
    assert_error(r, 404)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_other_methods_on_metrics_are_405_with_allow_header(service, method):
    r = service.request(method, "/metrics", body=b"{}", content_type="application/json")
    assert_error(r, 405)
    allow = (r.header("Allow") or "").upper()
    assert "GET" in allow and "POST" in allow, "Allow header %r" % (r.header("Allow"),)
    assert service.health().status == 200
