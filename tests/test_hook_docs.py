"""Every hook specification in dpbench/hookspecs.py is documented in docs/plugin-guide.md
with its exact signature, and the guide documents no hook that does not exist."""
import inspect
import re
from pathlib import Path

from dpbench import hookspecs

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugin-guide.md"


def hookspec_functions():
    """The functions marked with ``@hookspec`` (pluggy sets ``<project>_spec`` on them)."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {name: fn for name, fn in vars(hookspecs).items()
            if inspect.isfunction(fn) and hasattr(fn, marker)}


def documented_signature(fn) -> str:
    """``def name(arg: Annotation, ...) -> Return`` as written in the source (annotations
    are strings under ``from __future__ import annotations``)."""
    sig = inspect.signature(fn)

    def text(annotation):
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    params = ", ".join(p.name if p.annotation is inspect.Parameter.empty else f"{p.name}: {text(p.annotation)}"
                       for p in sig.parameters.values())
    ret = "" if sig.return_annotation is inspect.Signature.empty else f" -> {text(sig.return_annotation)}"
    return f"def {fn.__name__}({params}){ret}"


def test_there_are_hookspecs_to_document():
    assert {"dpbench_register_models", "dpbench_register_datasets"} <= set(hookspec_functions())


def test_every_hookspec_is_documented_with_its_exact_signature():
    guide = GUIDE.read_text()
    missing = [documented_signature(fn) for fn in hookspec_functions().values()
               if documented_signature(fn) not in guide]
    assert not missing, f"{GUIDE.name} lacks these exact signatures: {missing}"


def test_the_guide_documents_no_hook_that_does_not_exist():
    documented = set(re.findall(r"def (dpbench_\w+)\(", GUIDE.read_text()))
    assert documented and documented <= set(hookspec_functions()), documented - set(hookspec_functions())
