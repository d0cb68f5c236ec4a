"""Parsing of name:key=value strings and sweeps."""
import pytest

from dpbench.params import UsageError, format_params, parse_item, split_list, typed_params


def test_parse_item_with_sweep():
    name, raw = parse_item("copy:lag=[10,50,100],symbols=4")
    assert name == "copy"
    assert raw == {"lag": ["10", "50", "100"], "symbols": "4"}


def test_split_list_keeps_params_with_their_item():
    assert split_list("lorenz:noise=0.05,observe=0,copy:lag=[1,2],gru") == [
        "lorenz:noise=0.05,observe=0", "copy:lag=[1,2]", "gru"]


def test_typed_params_types_and_sweeps():
    defaults = {"lag": 5, "noise": 0.0, "flag": False, "name": "x"}
    assert typed_params("d", {"lag": "7", "noise": "0.5", "flag": "yes", "name": "y"}, defaults, "dataset") == {
        "lag": 7, "noise": 0.5, "flag": True, "name": "y"}
    combos = typed_params("d", {"lag": ["1", "2"], "noise": ["0", "0.1"]}, defaults, "dataset")
    assert len(combos) == 4 and {c["lag"] for c in combos} == {1, 2}


@pytest.mark.parametrize("raw, fragment", [
    ({"nope": "1"}, "unknown parameter 'nope'; valid: flag, lag, name, noise"),
    ({"lag": "1.5"}, "lag='1.5' is not a valid int"),
    ({"noise": "nan"}, "noise='nan' is not a valid float"),
    ({"flag": "maybe"}, "flag='maybe' is not a valid bool"),
])
def test_typed_params_errors_name_value_and_choices(raw, fragment):
    with pytest.raises(UsageError) as err:
        typed_params("d", raw, {"lag": 5, "noise": 0.0, "flag": False, "name": "x"}, "dataset")
    assert fragment in str(err.value)


@pytest.mark.parametrize("text", ["copy:lag", "copy:lag=[1,2", "copy:lag=]", ":lag=1", "copy:lag=1,lag=2", "copy:lag=[]"])
def test_malformed_items_are_usage_errors(text):
    with pytest.raises(UsageError):
        name, raw = parse_item(text)
        typed_params(name, raw, {"lag": 1}, "dataset")


def test_format_params_is_sorted_and_stable():
    assert format_params({"b": 1, "a": 0.5}) == "a=0.5,b=1"


def test_positional_value_sets_the_declared_parameter():
    name, raw = parse_item("dysts:Lorenz,length=200")
    defaults = {"system": "Lorenz", "length": 10}
    assert typed_params(name, raw, defaults, "dataset", positional="system") == {"system": "Lorenz", "length": 200}
    sweep = typed_params(*parse_item("dysts:[Lorenz,Chua]"), defaults, "dataset", positional="system")
    assert [p["system"] for p in sweep] == ["Lorenz", "Chua"]
    with pytest.raises(UsageError, match="expected key=value, got 'Lorenz'"):
        typed_params(name, raw, defaults, "dataset")
    with pytest.raises(UsageError, match="given twice"):
        typed_params(*parse_item("dysts:Lorenz,system=Chua"), defaults, "dataset", positional="system")
