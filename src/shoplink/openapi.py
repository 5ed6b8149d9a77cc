"""The OpenAPI contract in one file: `schemas/openapi.bundled.yaml`, made from the sources.

The source is `schemas/openapi.yaml`, whose request bodies point at
`schemas/requests/<name>.schema.json` (the very files the server validates bodies with). Many
client generators cannot follow such references, and a JSON Schema's `$defs` would leak into
their types; the bundle moves every referenced file into `components/schemas` (`account_create`
-> `AccountCreate`), lifts its `$defs` into components of their own (`anchor_create`'s
`position` -> `AnchorCreatePosition`) and drops what only JSON Schema needs (`$schema`; a `title`
becomes the description, since generators name classes after titles).

    python -m shoplink.openapi            # rewrite schemas/openapi.bundled.yaml
    python -m shoplink.openapi --check    # exit 1 when it is not what the sources give

(`scripts/bundle-openapi` runs the first; `scripts/check-contract` the second.)
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from shoplink.paths import SCHEMAS_DIR

SOURCE = SCHEMAS_DIR / "openapi.yaml"
BUNDLED = SCHEMAS_DIR / "openapi.bundled.yaml"
COMPONENTS = "#/components/schemas/"
HEADER = ("# GENERATED from schemas/openapi.yaml and schemas/requests/*.schema.json by\n"
          "# scripts/bundle-openapi (python -m shoplink.openapi): do not edit; edit the sources and rerun.\n"
          "# The same contract in one file, for client generators (docs/api.md).\n")


class BundleError(ValueError):
    pass


def component_name(file_name: str) -> str:
    """'anchor_create.schema.json' -> 'AnchorCreate'."""
    stem = file_name.split("/")[-1].removesuffix(".json").removesuffix(".schema")
    return "".join(part[:1].upper() + part[1:] for part in stem.replace("-", "_").split("_"))


class _Bundler:
    def __init__(self, spec: dict[str, Any], base: Path) -> None:
        self.spec = spec
        self.base = base
        self.schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
        self.done: dict[Path, str] = {}

    def external(self, ref: str, where: Path) -> str:
        """The component a reference to another file becomes (added on first use)."""
        file_part, _, fragment = ref.partition("#")
        path = (where.parent / file_part).resolve()
        if not path.is_file():
            raise BundleError(f"$ref {ref!r} in {where.name}: no such file {path}")
        name = self.done.get(path)
        if name is None:
            name = self.add_file(path)
        if not fragment:
            return COMPONENTS + name
        if fragment.startswith("/$defs/") and fragment.count("/") == 2:
            return COMPONENTS + name + component_name(fragment.rsplit("/", 1)[1])
        raise BundleError(f"$ref {ref!r}: only a whole file or one of its $defs can be referenced")

    def add_file(self, path: Path) -> str:
        name = component_name(path.name)
        if name in self.schemas:
            raise BundleError(f"{path.name} becomes components/schemas/{name}, which openapi.yaml already has")
        self.done[path] = name
        document = json.loads(path.read_text(encoding="utf-8"))
        defs = document.pop("$defs", {})
        self.schemas[name] = self.clean(document, path, name)
        for def_name, schema in defs.items():
            full = name + component_name(def_name)
            if full in self.schemas:
                raise BundleError(f"{path.name}: $defs/{def_name} clashes with components/schemas/{full}")
            self.schemas[full] = self.clean(schema, path, name)
        return name

    def clean(self, node: Any, where: Path, owner: str) -> Any:
        """A copy of a JSON Schema node with its references rewritten into the components."""
        if isinstance(node, list):
            return [self.clean(item, where, owner) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$schema", "$id", "title"):
                continue
            if key == "$defs":
                raise BundleError(f"{where.name}: $defs are only supported at the top of a file")
            if key in ("properties", "patternProperties") and isinstance(value, dict):  # names, not keywords
                out[key] = {name: self.clean(schema, where, owner) for name, schema in value.items()}
                continue
            if key == "$ref" and isinstance(value, str):
                if value.startswith("#/$defs/"):
                    out[key] = COMPONENTS + owner + component_name(value.rsplit("/", 1)[1])
                elif value.startswith("#"):
                    raise BundleError(f"{where.name}: unsupported local $ref {value!r}")
                else:
                    out[key] = self.external(value, where)
                continue
            out[key] = self.clean(value, where, owner)
        title = node.get("title")
        if isinstance(title, str) and "description" not in node:
            out = {"description": title, **out}
        return out

    def walk(self, node: Any) -> Any:
        """The source document with its external references replaced."""
        if isinstance(node, list):
            return [self.walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                out[key] = self.external(value, self.base)
            else:
                out[key] = self.walk(value)
        return out


def bundle(source: Path = SOURCE) -> dict[str, Any]:
    """The bundled document (a new dict; the source files are only read)."""
    spec = yaml.safe_load(source.read_text(encoding="utf-8"))
    bundler = _Bundler(copy.deepcopy(spec), source)
    result: dict[str, Any] = bundler.walk(bundler.spec)
    result["components"]["schemas"] = bundler.schemas
    return result


def render(spec: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoplink.openapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the bundle is current")
    args = parser.parse_args(argv)
    try:
        text = render(bundle())
    except BundleError as exc:
        print(f"openapi bundle: {exc}", file=sys.stderr)
        return 1
    current = BUNDLED.read_text(encoding="utf-8") if BUNDLED.exists() else ""
    if args.check:
        if current != text:
            print(f"{BUNDLED.relative_to(SCHEMAS_DIR.parent)} is not what schemas/openapi.yaml and "
                  "schemas/requests/ give: run scripts/bundle-openapi and commit the result", file=sys.stderr)
            return 1
        return 0
    if current != text:
        BUNDLED.write_text(text, encoding="utf-8")
        print(f"wrote {BUNDLED.relative_to(SCHEMAS_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
