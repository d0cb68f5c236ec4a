"""The plugin registry: built-ins, third-party entry points, broken plugins, strict mode."""
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from dpbench import plugins
from dpbench.plugins import PluginError, load_registry
from dpbench.specs import SpecError, ModelSpec, validate_model_spec

GOOD = '''
from dpbench import hookimpl, ModelSpec, DatasetSpec
from dpbench.models.recurrent import build_lstm

@hookimpl
def dpbench_register_models(register):
    register(ModelSpec(name="fake-lstm", family="recurrent", description="a third-party LSTM",
                       citation="test", factory=build_lstm, defaults={"hidden": 8, "layers": 1},
                       width="hidden"))
'''
BROKEN_IMPORT = "import this_module_does_not_exist\n"
INVALID_SPEC = '''
from dpbench import hookimpl, ModelSpec

@hookimpl
def dpbench_register_models(register):
    register(ModelSpec(name="Bad Name", family="recurrent", description="x", citation="y",
                       factory=lambda **k: None))
'''
DUPLICATE = '''
from dpbench import hookimpl, ModelSpec

@hookimpl
def dpbench_register_models(register):
    register(ModelSpec(name="lstm", family="recurrent", description="x", citation="y",
                       factory="nowhere:nothing"))
'''


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """Install modules as entry points of the 'dpbench' group; returns an installer."""
    monkeypatch.syspath_prepend(str(tmp_path))
    eps: list[metadata.EntryPoint] = []

    def install(**modules: str) -> None:
        for name, source in modules.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
            eps.append(metadata.EntryPoint(name=name, value=name, group="dpbench"))

    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [e for e in eps if e.group == group])
    monkeypatch.delenv("DPBENCH_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("DPBENCH_STRICT_PLUGINS", raising=False)
    return install


def test_builtins_register_through_the_hooks(registry):
    assert {"fnn", "rnn", "lstm", "gru"} <= set(registry.models)
    assert {"lorenz", "copy"} <= set(registry.datasets)
    assert all(p.builtin and p.error is None for p in registry.plugins if p.name.startswith("dpbench."))
    assert registry.model("lstm").plugin == "dpbench.models.recurrent"


def test_third_party_plugin_loads_from_entry_point(fake_entry_points):
    fake_entry_points(fakeplug_good=GOOD)
    reg = load_registry()
    assert reg.model("fake-lstm").plugin == "fakeplug_good"
    assert [p.hooks for p in reg.plugins if p.name == "fakeplug_good"] == [["dpbench_register_models"]]


def test_broken_plugins_are_skipped_with_a_warning(fake_entry_points):
    fake_entry_points(fakeplug_broken=BROKEN_IMPORT, fakeplug_invalid=INVALID_SPEC, fakeplug_good=GOOD)
    with pytest.warns(UserWarning) as warned:
        reg = load_registry()
    assert "fake-lstm" in reg.models  # the good one still loads
    errors = {p.name: p.error for p in reg.failures}
    assert "ModuleNotFoundError" in errors["fakeplug_broken"]
    assert "fakeplug_invalid" not in errors  # an invalid spec is rejected alone, not its plugin
    assert "Bad Name" in reg.rejected[("model", "Bad Name")]
    assert any("fakeplug_broken" in str(w.message) for w in warned)
    assert any("fakeplug_invalid" in str(w.message) and "Bad Name" in str(w.message) for w in warned)


MIXED = '''
import numpy as np
from dpbench import hookimpl, ModelSpec, DatasetSpec, Trajectory
from dpbench.models.recurrent import build_lstm

@hookimpl
def dpbench_register_models(register):
    register(ModelSpec(name="bad-esn", family="reservoir", description="two\\nlines", citation="c",
                       factory=build_lstm))
    register(ModelSpec(name="my-esn", family="reservoir", description="a new family", citation="c",
                       factory=build_lstm, defaults={"hidden": 4, "layers": 1}))

@hookimpl
def dpbench_register_datasets(register):
    register(DatasetSpec(name="my-sine", kind="forecast", description="a sine", citation="c",
                         generate=lambda p, s: Trajectory(np.sin(np.arange(300.0))[:, None], ["x"]),
                         metadata={"dt": 1.0}))
'''


def test_an_invalid_spec_is_rejected_alone_and_new_families_are_allowed(fake_entry_points):
    fake_entry_points(fakeplug_mixed=MIXED)
    with pytest.warns(UserWarning, match="bad-esn"):
        reg = load_registry()
    assert reg.model("my-esn").family == "reservoir"  # a family outside the built-in list
    assert reg.dataset("my-sine").plugin == "fakeplug_mixed"  # the plugin's valid dataset loads
    with pytest.raises(KeyError) as err:
        reg.model("bad-esn")
    assert "fakeplug_mixed" in str(err.value) and "rejected" in str(err.value) and "description" in str(err.value)
    with pytest.raises(PluginError, match="bad-esn"):
        load_registry(strict=True)


def test_unknown_name_points_at_a_plugin_that_failed_to_load(fake_entry_points):
    fake_entry_points(fakeplug_broken=BROKEN_IMPORT)
    with pytest.warns(UserWarning):
        reg = load_registry()
    with pytest.raises(KeyError) as err:
        reg.dataset("their-dataset")
    text = str(err.value)
    assert "unknown dataset 'their-dataset'" in text and "fakeplug_broken" in text and "ModuleNotFoundError" in text
    assert "\n" not in text


def test_factory_import_failure_names_the_plugin():
    from dpbench.specs import FactoryImportError

    spec = ModelSpec(name="m", family="x", description="d", citation="c", factory="nowhere_at_all:make",
                     plugin="their-plugin")
    with pytest.raises(FactoryImportError, match="model 'm' \\(plugin 'their-plugin'\\): cannot import 'nowhere_at_all:make'"):
        spec.build(input_size=1, input_steps=2, output_size=1, output_steps=1)


def test_plugins_answer_to_their_distribution_and_package_names(fake_entry_points):
    fake_entry_points(fakeplug_good=GOOD)
    reg = load_registry()
    info = next(p for p in reg.plugins if p.name == "fakeplug_good")
    assert info.answers_to("fakeplug-good") and info.answers_to("FAKEPLUG_GOOD") and not info.answers_to("other")


def test_strict_mode_turns_a_broken_plugin_into_an_error(fake_entry_points, monkeypatch):
    fake_entry_points(fakeplug_broken=BROKEN_IMPORT)
    with pytest.raises(PluginError, match="fakeplug_broken"):
        load_registry(strict=True)
    monkeypatch.setenv("DPBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        load_registry()


def test_duplicate_name_names_both_plugins(fake_entry_points):
    fake_entry_points(fakeplug_dup=DUPLICATE)
    with pytest.raises(PluginError) as err:
        load_registry()
    assert "dpbench.models.recurrent" in str(err.value) and "fakeplug_dup" in str(err.value)


def test_disable_env_skips_third_party(fake_entry_points, monkeypatch):
    fake_entry_points(fakeplug_good=GOOD)
    monkeypatch.setenv("DPBENCH_DISABLE_PLUGINS", "1")
    reg = load_registry()
    assert "fake-lstm" not in reg.models and all(p.builtin for p in reg.plugins)


def test_extra_plugins_register_like_third_party(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "fakeplug_inline.py").write_text(GOOD)
    import fakeplug_inline

    reg = load_registry(disable_third_party=True, extra_plugins=[("inline", fakeplug_inline)])
    assert reg.model("fake-lstm").plugin == "inline"


def test_unknown_name_lists_valid_choices(registry):
    with pytest.raises(KeyError) as err:
        registry.model("nosuch")
    assert "unknown model 'nosuch'; valid:" in str(err.value) and "lstm" in str(err.value)


def test_spec_validation_rejects_bad_fields():
    ok = dict(name="m", family="recurrent", description="d", citation="c", factory="a:b", defaults={"w": 2}, width="w")
    validate_model_spec(ModelSpec(**ok))
    validate_model_spec(ModelSpec(**{**ok, "family": "quantum"}))  # families are open
    for bad in ({"family": "Not A Name"}, {"description": "two\nlines"}, {"fit": 42}, {"width": "missing"},
                {"defaults": {"w": [1, 2]}, "width": None}, {"factory": 42}, {"tasks": ("classify",)}):
        with pytest.raises(SpecError):
            validate_model_spec(ModelSpec(**{**ok, **bad}))


def test_listing_does_not_import_heavy_optional_dependencies():
    code = ("import sys; from dpbench.plugins import load_registry; load_registry(); "
            "print(sorted(m for m in ('torchdiffeq', 'statsmodels', 'reservoirpy', 'ray', 'dysts', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_plugin_accepts_the_package_name(tmp_path, monkeypatch, capsys):
    from dpbench.cli import main

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "fakeplug_pkg.py").write_text(GOOD)
    ep = metadata.EntryPoint(name="fake-plugin", value="fakeplug_pkg", group="dpbench")
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [ep])
    monkeypatch.delenv("DPBENCH_DISABLE_PLUGINS", raising=False)
    plugins.set_registry(load_registry())
    try:
        assert main(["check-plugin", "fakeplug_pkg"]) == 0  # the package, not the entry-point name
        assert "ok   model 'fake-lstm' (plugin fake-plugin)" in capsys.readouterr().out
    finally:
        plugins.set_registry(None)
