"""read_chunked: the local gateway's reader of ``Transfer-Encoding: chunked`` bodies (RFC 9112 7.1)."""

import io

import pytest

from local_mode.server import CHUNK_LINE_BYTES, BodyTooLarge, read_chunked


def _read(raw: bytes, limit: int = 1000) -> bytes:
    return read_chunked(io.BufferedReader(io.BytesIO(raw)), limit)


def test_chunks_are_joined():
    assert _read(b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n") == b"abc0123456789"


def test_sizes_are_hex_in_either_case():
    assert _read(b"a\r\n" + b"x" * 10 + b"\r\nA\r\n" + b"y" * 10 + b"\r\n0\r\n\r\n") == b"x" * 10 + b"y" * 10


def test_an_empty_body():
    assert _read(b"0\r\n\r\n") == b""


def test_extensions_and_trailers_are_dropped():
    assert _read(b"2;name=value\r\nhi\r\n0;last\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n") == b"hi"


def test_bare_newlines_are_accepted():
    assert _read(b"2\nhi\r\n0\n\n") == b"hi"


def test_what_follows_the_body_is_left_unread():
    stream = io.BufferedReader(io.BytesIO(b"2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n"))

    assert read_chunked(stream, 100) == b"hi"
    assert stream.read() == b"GET / HTTP/1.1\r\n"  # the next request on a kept connection


def test_a_body_at_the_limit_is_read():
    assert _read(b"5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n", limit=10) == b"abcdefghij"


def test_a_body_over_the_limit_is_refused_before_the_chunk_that_passes_it_is_read():
    stream = io.BufferedReader(io.BytesIO(b"5\r\nabcde\r\n6\r\nfghijk\r\n0\r\n\r\n"))

    with pytest.raises(BodyTooLarge):
        read_chunked(stream, 10)
    assert stream.read() == b"fghijk\r\n0\r\n\r\n"  # nothing of the oversize chunk was consumed


def test_a_huge_declared_chunk_is_refused_without_reading():
    with pytest.raises(BodyTooLarge):
        _read(b"ffffffffffffffffffff\r\n", limit=10 * 1024 * 1024)


@pytest.mark.parametrize(
    "raw",
    [
        b"zz\r\nab\r\n0\r\n\r\n",  # size not hex
        b"-1\r\nab\r\n0\r\n\r\n",  # signed
        b"0x2\r\nab\r\n0\r\n\r\n",  # a prefix
        b"\r\nab\r\n0\r\n\r\n",  # no size
        b"5\r\nab",  # a chunk cut off
        b"2\r\nabXX0\r\n\r\n",  # no CRLF after the data
        b"2\r\nab\r\n",  # no last chunk
        b"2\r\nab\r\n0\r\n",  # no end of trailers
        b"1" * (CHUNK_LINE_BYTES + 10) + b"\r\n",  # a size line without end
        b"0\r\n" + b"X: y\r\n" * 101 + b"\r\n",  # trailers without end
    ],
)
def test_malformed_or_cut_off_bodies_are_refused(raw):
    with pytest.raises(ValueError, match=r"\w"):
        _read(raw)
