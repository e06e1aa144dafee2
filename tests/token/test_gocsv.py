"""The Go encoding/csv compatible reader (spec §8.1, §19.1)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn.token._gocsv import CSVParseError, parse


@pytest.mark.parametrize(
    ("data", "records"),
    [
        (b"a,b,c\n", [["a", "b", "c"]]),
        (b"a,b,c", [["a", "b", "c"]]),
        (b"a,b\nc\n", [["a", "b"], ["c"]]),
        (b"a, b ,c \n", [["a", " b ", "c "]]),
        (b'"a,b","c""d",e\n', [["a,b", 'c"d', "e"]]),
        (b'"multi\nline",x\n', [["multi\nline", "x"]]),
        (b'"multi\r\nline",x\r\n', [["multi\nline", "x"]]),
        (b"a\r\nb\r\n", [["a"], ["b"]]),
        (b"a\rb\n", [["a\rb"]]),
        (b"a\r", [["a"]]),
        (b"\n\n\na\n\n", [["a"]]),
        (b"\r\n\r\na\n", [["a"]]),
        (b"   \n", [["   "]]),
        (b"#comment,x,y\n", [["#comment", "x", "y"]]),
        (b"\xef\xbb\xbfa,b\n", [["\ufeffa", "b"]]),
        (b"a,,\n", [["a", "", ""]]),
        (b",\n", [["", ""]]),
        (b'""\n', [[""]]),
        (b'"",""', [["", ""]]),
        (b'a,"b"\n', [["a", "b"]]),
        (b"\xff,x\n", [["\udcff", "x"]]),
        (b"", []),
    ],
)
def test_records(data: bytes, records: list[list[str]]) -> None:
    """Records come out exactly as Go's csv.Reader (FieldsPerRecord=-1) returns them."""
    assert records == parse(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'a"b,c\n', 'parse error on line 1, column 2: bare " in non-quoted-field'),
        (b'x,y\nab,c"d\n', 'parse error on line 2, column 5: bare " in non-quoted-field'),
        (b' "a",b\n', 'parse error on line 1, column 2: bare " in non-quoted-field'),
        (b'"a"b,c\n', 'parse error on line 1, column 3: extraneous or missing " in quoted-field'),
        (b'"a" ,c\n', 'parse error on line 1, column 3: extraneous or missing " in quoted-field'),
        (b'"abc', 'parse error on line 1, column 5: extraneous or missing " in quoted-field'),
        (b'"abc\n', 'parse error on line 1, column 6: extraneous or missing " in quoted-field'),
        (
            b'"a\nbc',
            "record on line 1; parse error on line 2, column 3: "
            'extraneous or missing " in quoted-field',
        ),
        (
            b'"a\nb"x',
            "record on line 1; parse error on line 2, column 2: "
            'extraneous or missing " in quoted-field',
        ),
        (b'\xc3\xa9"x\n', 'parse error on line 1, column 3: bare " in non-quoted-field'),
    ],
)
def test_errors(data: bytes, message: str) -> None:
    """Malformed input raises Go's ParseError text (1-based byte columns)."""
    with pytest.raises(CSVParseError) as info:
        parse(data)
    assert message == str(info.value)


def test_error_fields() -> None:
    """The error carries its positions and reason."""
    with pytest.raises(CSVParseError) as info:
        parse(b'ok\n"x\ny"z')
    err = info.value
    assert (err.start_line, err.line, err.column) == (2, 3, 2)
    assert "extraneous" in err.reason


def test_python_csv_would_differ() -> None:
    """Python's csv module accepts what Go rejects: the reason for our own reader."""
    assert list(csv.reader(io.StringIO('a"b,c\n'))) == [['a"b', "c"]]
    with pytest.raises(CSVParseError):
        parse(b'a"b,c\n')


_FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\té')), max_size=6)


@given(st.lists(st.lists(_FIELD, min_size=1, max_size=4), min_size=1, max_size=4))
def test_quoted_roundtrip_property(records: list[list[str]]) -> None:
    """Records written with every field quoted (RFC 4180) read back identically.

    Go folds \\r\\n to \\n inside quoted fields too, so the expectation does the same.
    """
    text = "".join(
        ",".join('"' + f.replace('"', '""') + '"' for f in rec) + "\n" for rec in records
    )
    expected = [[f.replace("\r\n", "\n") for f in rec] for rec in records]
    assert expected == parse(text.encode())


@given(st.binary(max_size=60))
def test_never_crashes_property(data: bytes) -> None:
    """Arbitrary bytes either parse or raise CSVParseError, nothing else."""
    try:
        records = parse(data)
    except CSVParseError as exc:
        error: CSVParseError | None = exc
    else:
        error = None
        assert all(isinstance(f, str) for rec in records for f in rec)
    if error is not None:
        assert error.line >= error.start_line >= 1
        assert error.column >= 1
