"""The chart page: GET / and its files under /page/, served from the binary.

One m2pg with API tokens for the module: the page must open without one."""

import os

import pytest

from m2pg_sys import REPO_ROOT, assert_error
from librato_sys import bearer

TOKEN = "tkPage-5Rt7ee"
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'"
DYGRAPHS = "/usr/share/javascript/dygraphs"

# name served, type, where its bytes come from
FILES = [
    ("app.js", "text/javascript; charset=utf-8", os.path.join(REPO_ROOT, "web", "app.js")),
    ("style.css", "text/css; charset=utf-8", os.path.join(REPO_ROOT, "web", "style.css")),
    ("icon.svg", "image/svg+xml", os.path.join(REPO_ROOT, "web", "icon.svg")),
    ("dygraph.min.js", "text/javascript; charset=utf-8", os.path.join(DYGRAPHS, "dygraph.min.js")),
    ("dygraph.min.css", "text/css; charset=utf-8", os.path.join(DYGRAPHS, "dygraph.min.css")),
]


@pytest.fixture(scope="module")
def svc(module_pair, module_m2pg_factory):
    return module_m2pg_factory(module_pair, extra_env={"API_TOKENS": TOKEN})


def source_bytes(path):
    """The file as the binary embeds it: a trailing sourceMappingURL comment is dropped."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.rstrip(b"\n").split(b"\n")
    if lines[-1].startswith((b"//# sourceMappingURL=", b"/*# sourceMappingURL=")):
        return b"\n".join(lines[:-1]) + b"\n"
    return data


def test_root_is_the_page_with_its_csp_and_no_token(svc):
    r = svc.request("GET", "/")
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert r.header("Content-Security-Policy") == CSP
    assert r.header("Cache-Control") == "no-cache"
    assert r.header("X-Content-Type-Options") == "nosniff"
    with open(os.path.join(REPO_ROOT, "web", "index.html"), "rb") as f:
        assert r.body == f.read(), "GET / is not web/index.html as built (rebuild with make)"
    for ref in (b'src="/page/dygraph.min.js"', b'src="/page/app.js"', b'href="/page/style.css"',
                b'href="/page/dygraph.min.css"'):
        assert ref in r.body
    # The page is open; the data is not.
    assert_error(svc.request("GET", "/metrics?name=x"), 401)


def test_head_of_root_has_the_page_headers_and_no_body(svc):
    """HEAD / says what GET / would (the router once answered every HEAD but two as /metrics)."""
    get = svc.request("GET", "/")
    r = svc.request("HEAD", "/")
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert r.header("Content-Security-Policy") == CSP
    assert r.header("Content-Length") == str(len(get.body))
    assert r.body == b""


def test_a_query_string_on_root_is_still_the_page(svc):
    r = svc.request("GET", "/?name=web&from=-6h&stats=mean,perc95")
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8", r


@pytest.mark.parametrize("name,ctype,path", FILES, ids=[f[0] for f in FILES])
def test_each_file_with_its_type_etag_and_304(svc, name, ctype, path):
    r = svc.request("GET", "/page/" + name)
    assert r.status == 200, r
    assert r.header("Content-Type") == ctype
    assert r.body == source_bytes(path)
    etag = r.header("ETag")
    assert etag and etag.startswith('"') and etag.endswith('"') and len(etag) > 10, etag
    assert r.header("Cache-Control") == "no-cache"
    assert r.header("Content-Security-Policy") is None  # on the HTML only
    for inm in (etag, 'W/' + etag, '"other", ' + etag, "*"):
        again = svc.request("GET", "/page/" + name, headers={"If-None-Match": inm})
        assert again.status == 304, (inm, again)
        assert again.body == b""
        assert again.header("ETag") == etag
    changed = svc.request("GET", "/page/" + name, headers={"If-None-Match": '"0123456789abcdef"'})
    assert changed.status == 200 and changed.body == r.body


def test_each_file_has_its_own_stable_etag(svc):
    tags = {"index.html": svc.request("GET", "/").header("ETag")}
    for name, _, _ in FILES:
        tags[name] = svc.request("GET", "/page/" + name).header("ETag")
        assert svc.request("GET", "/page/" + name).header("ETag") == tags[name]
    assert len(set(tags.values())) == len(tags), tags


def test_index_revalidates_with_304(svc):
    etag = svc.request("GET", "/").header("ETag")
    r = svc.request("GET", "/", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"", r


@pytest.mark.parametrize("path", ["/page/nope.js", "/page/index.html", "/page/", "/page",
                                  "/page/../page/app.js", "/page/app.js/x", "/page/dygraph.js.map"])
def test_unknown_files_are_404_json(svc, path):
    body = assert_error(svc.request("GET", path), 404)
    assert "not found" in body["error"]


def test_page_files_need_no_token_but_take_only_get(svc):
    for name, _, _ in FILES:
        assert svc.request("GET", "/page/" + name).status == 200
        # A token, valid or not, changes nothing for the page's own files.
        assert svc.request("GET", "/page/" + name, headers=bearer("nope")).status == 200
    r = svc.request("POST", "/", body=b"x")
    assert_error(r, 405)
    assert r.header("Allow") == "GET, HEAD"
