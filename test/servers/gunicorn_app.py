"""WSGI app for test/servers/gunicorn.sh: /big is 4 MiB of a pattern,
/post answers the count and sum of the request body, / a short page."""
BIG = bytes((i * 7 + 3) & 255 for i in range(4 << 20))


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/big":
        body = BIG
    elif path == "/post":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(n)
        body = ("got %d %d\n" % (len(data), sum(data) % (1 << 32))).encode()
    else:
        body = b"hello\n"
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]
