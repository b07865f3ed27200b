"""The import layering written in docs/design.md ("Layers"), checked on every module of the package.

A module may import modules of its own layer or of a lower one, at module level or inside a function
(lazy imports count: they are dependencies all the same). ``*.cli`` and ``*_cli`` modules wire commands together and
sit on top. The table here and the one in docs/design.md are the same; a test keeps them so.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# longest prefix wins; lowest layer first (the order docs/design.md lists)
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["specenh", "specenh.utils", "specenh.dsp", "specenh.metrics.textnorm", "specenh.train.harness"]),
    ("data", ["specenh.data"]),
    ("metrics", ["specenh.metrics"]),
    ("features, degrade", ["specenh.features", "specenh.degrade"]),
    ("vocoder", ["specenh.vocoder"]),
    ("asr", ["specenh.asr", "specenh.data.clips"]),
    ("frontends", ["specenh.frontends"]),
    ("train", ["specenh.train"]),
    ("stages", ["specenh.stages"]),
    ("bench, report", ["specenh.bench", "specenh.report"]),
    ("cli", ["specenh.cli", "*.cli", "*_cli"]),
]


def layer_of(module: str) -> int:
    """The layer index of a dotted module name (``*.cli`` and ``*_cli`` modules: the top layer)."""
    if module == "specenh.cli" or module.endswith((".cli", "_cli")):
        return len(LAYERS) - 1
    best, best_len = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best < 0:
        raise KeyError(f"{module}: in no layer of docs/design.md")
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every specenh import in ``source`` (relative ones resolved)."""
    out = []
    package = module.split(".")
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.ImportFrom):
            if n.level:
                base = package[: len(package) - n.level + (1 if module.endswith("__init__") else 0)]
                target = ".".join(base + ([n.module] if n.module else []))
            else:
                target = n.module or ""
            if target.startswith("specenh"):
                out.append((n.lineno, target))
        elif isinstance(n, ast.Import):
            out += [(n.lineno, a.name) for a in n.names if a.name.startswith("specenh")]
    return out


def violations(source: str, module: str) -> list[str]:
    own = layer_of(module)
    return [f"{module}:{line} imports {target} ({LAYERS[layer_of(target)][0]} is above {LAYERS[own][0]})"
            for line, target in imports_of(source, module) if layer_of(target) > own]


def test_every_import_follows_the_layers():
    bad = []
    files = sorted((ROOT / "specenh").rglob("*.py"))
    assert len(files) > 50
    for p in files:
        bad += violations(p.read_text(encoding="utf-8"), module_name(p))
    assert not bad, "imports against docs/design.md's layering:\n" + "\n".join(bad)


def test_the_checker_catches_an_upward_import():
    src = "def f():\n    from specenh.stages.decode import decode_job\n"
    assert violations(src, "specenh.frontends.mask") == [
        "specenh.frontends.mask:2 imports specenh.stages.decode (stages is above frontends)"]
    assert violations("from specenh.utils.io import atomic_path\n", "specenh.frontends.mask") == []
    assert layer_of("specenh.asr.cli") == len(LAYERS) - 1
    assert layer_of("specenh.train.harness") == 0 and layer_of("specenh.train.gan") == layer_of("specenh.train")


def test_design_md_states_the_same_layers():
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    assert block, "docs/design.md lost its layer table"
    rows = [r for r in block.group(1).splitlines() if r.startswith("| ") and not r.startswith("| layer")]
    stated = [(r.split("|")[1].strip(), sorted(m.strip(" `") for m in r.split("|")[2].split(","))) for r in rows]
    assert stated == [(name, sorted(prefixes)) for name, prefixes in LAYERS]
