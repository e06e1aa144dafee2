"""Go pflag's syntax and error texts, as kube-apiserver's command line parses them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8sauthn.config._pflag import (
    Flag,
    FlagError,
    FlagSet,
    HelpRequested,
    parse_duration,
    parse_value,
)

FLAGS = FlagSet(
    (
        Flag("name", "string", "", "g", ""),
        Flag("on", "bool", False, "g", ""),
        Flag("list", "strings", ("d",), "g", ""),
        Flag("ttl", "duration", 120.0, "g", ""),
        Flag("port", "int", 6443, "g", ""),
        Flag("addr", "ip", "0.0.0.0", "g", ""),
        Flag("claim", "map", (), "g", ""),
    ),
    ignored={"etcd-servers": "string", "allow-privileged": "bool", "v": "string"},
)


class TestDuration:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("2m", 120.0),
            ("10s", 10.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("300ms", 0.3),
            ("0", 0.0),
            ("-1s", -1.0),
            ("+2s", 2.0),
            (".5s", 0.5),
            ("1us", 1e-6),
            ("2m0s", 120.0),
        ],
    )
    def test_go_durations(self, text, seconds):
        """time.ParseDuration forms, in seconds."""
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", 'time: invalid duration ""'),
            ("1", 'time: missing unit in duration "1"'),
            ("1d", 'time: unknown unit "d" in duration "1d"'),
            ("s", 'time: invalid duration "s"'),
            ("-", 'time: invalid duration "-"'),
        ],
    )
    def test_invalid_durations(self, text, message):
        """Go's error texts."""
        with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
            parse_duration(text)

    @given(st.integers(min_value=0, max_value=10**6))
    def test_whole_seconds_round_trip(self, n):
        """Any whole number of seconds written as Ns parses back."""
        assert float(n) == parse_duration(f"{n}s")


class TestValues:
    def test_bools(self):
        """strconv.ParseBool's spellings; anything else is pflag's error."""
        flag = Flag("on", "bool", False, "g", "")
        assert all(parse_value(flag, t) for t in ("1", "t", "T", "TRUE", "true", "True"))
        assert not any(parse_value(flag, t) for t in ("0", "f", "F", "FALSE", "false", "False"))
        with pytest.raises(FlagError) as exc:
            parse_value(flag, "yes")
        assert str(exc.value) == (
            'invalid argument "yes" for "--on" flag: strconv.ParseBool: parsing "yes": '
            "invalid syntax"
        )

    @pytest.mark.parametrize(
        ("text", "items"),
        [
            ("a,b", ("a", "b")),
            ("", ()),
            ('"a,b",c', ("a,b", "c")),
            ('"say ""hi""",x', ('say "hi"', "x")),
            ("a,", ("a", "")),
            (" a, b", (" a", " b")),
        ],
    )
    def test_string_slices_are_csv(self, text, items):
        """One CSV record per occurrence (pflag readAsCSV), quotes honoured, no trimming."""
        assert items == parse_value(Flag("l", "strings", (), "g", ""), text)

    @pytest.mark.parametrize("text", ['a"b', '"open', '"a"b'])
    def test_bad_csv(self, text):
        """Go's encoding/csv refuses bare and unbalanced quotes."""
        with pytest.raises(FlagError, match='for "--l" flag'):
            parse_value(Flag("l", "strings", (), "g", ""), text)

    @pytest.mark.parametrize(("text", "value"), [("8080", 8080), ("0x10", 16), ("010", 8)])
    def test_ints_use_base_zero(self, text, value):
        """strconv.ParseInt(s, 0, 64): hex and leading-zero octal."""
        assert value == parse_value(Flag("p", "int", 0, "g", ""), text)

    def test_bad_int_and_ip(self):
        """pflag's texts for ints and IPs."""
        with pytest.raises(FlagError, match=r'strconv\.ParseInt: parsing "x": invalid syntax'):
            parse_value(Flag("p", "int", 0, "g", ""), "x")
        with pytest.raises(FlagError, match='failed to parse IP: "host"'):
            parse_value(Flag("a", "ip", "", "g", ""), "host")

    def test_map_pairs_are_trimmed_and_split_once(self):
        """key=value with the value free to hold '=' (MapStringStringNoSplit)."""
        flag = Flag("c", "map", (), "g", "")
        assert parse_value(flag, " hd = a=b,c ") == (("hd", "a=b,c"),)
        with pytest.raises(FlagError, match="malformed pair, expect string=string"):
            parse_value(flag, "novalue")


class TestCommandLine:
    def test_defaults(self):
        """Nothing given: every default, nothing explicit."""
        parsed = FLAGS.parse([])
        assert parsed.values["list"] == ("d",)
        assert frozenset() == parsed.explicit

    def test_both_value_forms_and_underscores(self):
        """--flag=value, --flag value, and _ for - all work."""
        parsed = FLAGS.parse(["--name=a", "--port", "7", "--ttl=1m"])
        assert (
            parsed.values["name"],
            parsed.values["port"],
            parsed.values["ttl"],
        ) == ("a", 7, 60.0)
        dashed = FlagSet((Flag("token-auth-file", "string", "", "g", ""),))
        assert dashed.parse(["--token_auth_file", "x"]).values["token-auth-file"] == "x"

    def test_bool_takes_no_separate_value(self):
        """--on false sets true and leaves 'false' as a positional argument, as pflag does."""
        parsed = FLAGS.parse(["--on", "false"])
        assert parsed.values["on"] is True
        assert parsed.positional == ("false",)
        assert FLAGS.parse(["--on=false"]).values["on"] is False

    def test_repeated_slices_replace_the_default_then_append(self):
        """The first occurrence replaces the default, later ones append."""
        parsed = FLAGS.parse(["--list=a,b", "--list", "c", "--claim=k=v", "--claim=j=w"])
        assert parsed.values["list"] == ("a", "b", "c")
        assert parsed.values["claim"] == (("k", "v"), ("j", "w"))

    def test_double_dash_ends_flags(self):
        """Everything after -- is positional."""
        assert FLAGS.parse(["--", "--name=x", "y"]).positional == ("--name=x", "y")

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--nope"], "unknown flag: --nope"),
            (["--name"], "flag needs an argument: --name"),
            (["-x"], "unknown shorthand flag: 'x' in -x"),
            (["---name"], "bad flag syntax: ---name"),
            (["--=x"], "bad flag syntax: --=x"),
        ],
    )
    def test_errors(self, argv, message):
        """pflag's error texts."""
        with pytest.raises(FlagError) as exc:
            FLAGS.parse(argv)
        assert message == str(exc.value)

    @pytest.mark.parametrize("arg", ["-h", "--help"])
    def test_help(self, arg):
        """-h and --help ask for help."""
        with pytest.raises(HelpRequested):
            FLAGS.parse([arg])

    def test_ignored_kube_apiserver_flags_warn(self):
        """Non-authentication kube-apiserver flags are accepted, consumed and reported."""
        parsed = FLAGS.parse(["--etcd-servers", "https://etcd:2379", "--allow-privileged", "-"])
        assert parsed.positional == ("-",)
        assert parsed.warnings == (
            "ignoring --etcd-servers: not an authentication flag",
            "ignoring --allow-privileged: not an authentication flag",
        )

    def test_klog_verbosity_shorthand_is_ignored(self):
        """kube-apiserver's -v=2 and -v 2 are consumed with a warning."""
        parsed = FLAGS.parse(["-v=2", "-v", "4", "--name=x"])
        assert (parsed.values["name"], parsed.positional) == ("x", ())
        assert len(parsed.warnings) == 2
