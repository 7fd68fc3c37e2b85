#!/usr/bin/env python3
"""Writes the book's API reference (docs/src/reference/<kind>.md) from Slipway's CRDs.

The CRDs read are the chart's, charts/slipway/crds/*.yaml, which `make crds` writes from the API
types (crdgen) and which crds/tests/crdgen_drift.rs keeps equal to what the code generates; so
the reference follows the code through them. One page per kind: its group, version, scope,
names, subresources and printer columns, then every field path with its type, whether it is
required, its description, enum, default, bounds and validation rules (CEL).

Kubernetes' own types embedded in the schemas (a pod template, environment variables, ...) are
named and linked rather than listed field by field: their reference is Kubernetes'.

    python3 docs/tools/crd_reference.py            # (re)write docs/src/reference/
    python3 docs/tools/crd_reference.py --check    # fail when what is checked in differs
    python3 docs/tools/crd_reference.py --self-test  # the YAML reader against PyYAML, if installed

Standard library only.
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yaml_subset  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CRD_DIR = os.path.join(ROOT, "charts", "slipway", "crds")
OUT_DIR = os.path.join(ROOT, "docs", "src", "reference")
REGENERATE = "make docs"  # or make crds, or python3 docs/tools/crd_reference.py

K8S_API = "https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.35/"
# Kubernetes types that the schemas embed, recognised by the first words of the description
# k8s-openapi gives them (or that Slipway's field gives them), shown as one row with a link.
KUBERNETES_TYPES = [
    ("EnvVar represents an environment variable", "core/v1 EnvVar", "envvar-v1-core"),
    ("Standard object's metadata.", "meta/v1 ObjectMeta", "objectmeta-v1-meta"),
    ("Specification of the desired behavior of the pod.", "core/v1 PodSpec", "podspec-v1-core"),
    ("ResourceRequirements describes", "core/v1 ResourceRequirements", "resourcerequirements-v1-core"),
    ("Volume represents a named volume", "core/v1 Volume", "volume-v1-core"),
    ("VolumeMount describes a mounting", "core/v1 VolumeMount", "volumemount-v1-core"),
    ("A label selector is a label query", "meta/v1 LabelSelector", "labelselector-v1-meta"),
    ("LocalObjectReference contains enough information", "core/v1 LocalObjectReference",
     "localobjectreference-v1-core"),
    ("ObjectReference contains enough information", "core/v1 ObjectReference", "objectreference-v1-core"),
    ("The pod this Toleration is attached to", "core/v1 Toleration", "toleration-v1-core"),
    ("Affinity is a group of affinity scheduling rules", "core/v1 Affinity", "affinity-v1-core"),
    ("SecurityContext holds", "core/v1 SecurityContext", "securitycontext-v1-core"),
]


def kubernetes_type(schema):
    description = (schema.get("description") or "").strip()
    for prefix, name, anchor in KUBERNETES_TYPES:
        if description.startswith(prefix) and (schema.get("properties") or schema.get("items")):
            return name, anchor
    return None


def cell(text):
    """Text for a table cell: one line, pipes escaped, `<` and `>` outside code spans shown as
    themselves rather than read as HTML."""
    text = text.strip().replace("\r", "")
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    text = "<br><br>".join(_escape_html(p) for p in paragraphs if p)
    return text.replace("|", "\\|")


def _escape_html(text):
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans to keep
        parts = [text]
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def code(value):
    """`value` as inline code in a table cell."""
    if isinstance(value, str) and value:
        text = value
    else:
        text = json.dumps(value, sort_keys=True)
    text = text.replace("|", "\\|")
    ticks = "``" if "`" in text else "`"
    pad = " " if ticks == "``" else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def type_of(schema):
    if schema.get("x-kubernetes-int-or-string"):
        return "integer or string"
    if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
        return "any (kept as written)" if "type" not in schema else f"{schema['type']} (any fields)"
    t = schema.get("type", "")
    if t == "array":
        return "[]" + type_of(schema.get("items") or {})
    if t == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return "map[string]" + type_of(extra)
        return "object"
    fmt = schema.get("format")
    return f"{t} ({fmt})" if fmt else (t or "any")


def constraints(schema):
    parts = []
    if "enum" in schema:
        parts.append("One of " + ", ".join(code(v) for v in schema["enum"]) + ".")
    if "default" in schema:
        parts.append("Default: " + code(schema["default"]) + ".")
    # (lower bound, upper bound, how a range reads, a lower bound alone, an upper bound alone)
    bounds = [
        ("minimum", "maximum", "Value {} to {}.", "Value at least {}.", "Value at most {}."),
        ("minLength", "maxLength", "Length {} to {}.", "Length at least {}.", "Length at most {}."),
        ("minItems", "maxItems", "{} to {} items.", "At least {} item(s).", "At most {} items."),
        ("minProperties", "maxProperties", "{} to {} entries.", "At least {} entries.", "At most {} entries."),
    ]
    if schema.get("exclusiveMinimum") or schema.get("exclusiveMaximum"):
        raise SystemExit("exclusive bounds are not shown yet: teach crd_reference.py to show them")
    for low, high, both, low_only, high_only in bounds:
        lo, hi = schema.get(low), schema.get(high)
        if lo is not None and hi is not None:
            parts.append(both.format(lo, hi))
        elif lo is not None:
            parts.append(low_only.format(lo))
        elif hi is not None:
            parts.append(high_only.format(hi))
    if "pattern" in schema:
        parts.append("Pattern: " + code(schema["pattern"]) + ".")
    if schema.get("x-kubernetes-list-type"):
        keys = schema.get("x-kubernetes-list-map-keys")
        parts.append(
            f"List type {code(schema['x-kubernetes-list-type'])}"
            + (" keyed by " + ", ".join(code(k) for k in keys) if keys else "")
            + "."
        )
    for rule in schema.get("x-kubernetes-validations") or []:
        message = rule.get("message") or rule.get("messageExpression") or ""
        parts.append("Rule " + code(rule["rule"]) + (": " + cell(message) if message else "") + ".")
    return parts


def rows(schema, path, required, out):
    """Appends (path, type, required, description) for `schema` and, unless it is a Kubernetes
    type, everything under it."""
    k8s = kubernetes_type(schema)
    description = cell(schema.get("description") or "")
    if k8s:
        name, anchor = k8s
        note = f"Kubernetes' [{name}]({K8S_API}#{anchor}); its fields are not listed here."
        description = f"{description} {note}".strip()
        out.append((path, type_of(schema), required, " ".join([description] + constraints(schema))))
        return
    if path:
        out.append((path, type_of(schema), required, " ".join(p for p in [description] + constraints(schema) if p)))
    elif constraints(schema):
        out.append(("(the whole object)", "object", False, " ".join(constraints(schema))))
    wanted = set(schema.get("required") or [])
    for name in sorted(schema.get("properties") or {}):
        child = schema["properties"][name]
        if not path and name in ("apiVersion", "kind", "metadata"):
            continue
        rows(child, f"{path}.{name}" if path else name, name in wanted, out)
    items = schema.get("items")
    if isinstance(items, dict) and (items.get("properties") or items.get("items") or items.get("x-kubernetes-validations")):
        item_k8s = kubernetes_type(items)
        if item_k8s:
            out.append((f"{path}[]", type_of(items), False,
                        f"Kubernetes' [{item_k8s[0]}]({K8S_API}#{item_k8s[1]}); its fields are not listed here."))
        else:
            rows(items, f"{path}[]", False, out)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and (extra.get("properties") or extra.get("items")):
        rows(extra, f"{path}.<key>", False, out)


def page(crd, source):
    spec = crd["spec"]
    names = spec["names"]
    versions = spec["versions"]
    lines = [
        f"# {names['kind']}",
        "",
        f"<!-- Generated by docs/tools/crd_reference.py from {source}; do not edit. "
        f"Regenerate with: {REGENERATE}. -->",
        "",
    ]
    for version in versions:
        schema = version["schema"]["openAPIV3Schema"]
        if len(versions) > 1:
            lines += [f"## {version['name']}", ""]
        lines += [
            cell(schema.get("description") or ""),
            "",
            "| | |",
            "|---|---|",
            f"| API version | `{spec['group']}/{version['name']}` |",
            f"| kind | `{names['kind']}` |",
            f"| scope | {spec['scope']} |",
            f"| resource | `{names['plural']}` (singular `{names['singular']}`) |",
        ]
        if names.get("shortNames"):
            lines.append("| short names | " + ", ".join(f"`{n}`" for n in names["shortNames"]) + " |")
        if names.get("categories"):
            lines.append("| categories | " + ", ".join(f"`{n}`" for n in names["categories"]) + " |")
        served = "served" if version.get("served") else "not served"
        stored = ", the storage version" if version.get("storage") else ""
        lines.append(f"| version | {served}{stored} |")
        sub = version.get("subresources") or {}
        parts = []
        if "status" in sub:
            parts.append("`status`")
        if "scale" in sub:
            scale = sub["scale"]
            parts.append(
                "`scale` (replicas "
                + code(scale.get("specReplicasPath", ""))
                + ", status "
                + code(scale.get("statusReplicasPath", ""))
                + (", selector " + code(scale["labelSelectorPath"]) if scale.get("labelSelectorPath") else "")
                + ")"
            )
        lines.append("| subresources | " + (", ".join(parts) or "none") + " |")
        lines.append("")
        columns = version.get("additionalPrinterColumns") or []
        if columns:
            lines += [
                "## Printer columns",
                "",
                "What `kubectl get` shows.",
                "",
                "| column | type | JSON path | description |",
                "|---|---|---|---|",
            ]
            for c in columns:
                lines.append(
                    f"| {cell(c['name'])} | {c.get('type', '')} | {code(c['jsonPath'])} | "
                    f"{cell(c.get('description') or '')} |"
                )
            lines.append("")
        out = []
        rows(schema, "", False, out)
        lines += [
            "## Fields",
            "",
            "Every field, by its path from the object's root (`[]` is an item of a list, `<key>` an "
            "entry of a map); `apiVersion`, `kind` and `metadata` are Kubernetes' own.",
            "",
            "| field | type | required | description |",
            "|---|---|---|---|",
        ]
        for path, typ, req, description in out:
            lines.append(f"| `{path}` | {typ} | {'yes' if req else ''} | {description} |")
        lines.append("")
    return "\n".join(lines)


def pages():
    """{file name: text} of every page, from the CRDs."""
    result = {}
    for path in sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            crd = yaml_subset.load(f.read(), os.path.relpath(path, ROOT))
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            raise SystemExit(f"{path}: not a CustomResourceDefinition")
        kind = crd["spec"]["names"]["kind"]
        name = kind.lower() + ".md"
        result[name] = page(crd, os.path.relpath(path, ROOT))
    return result


def self_test():
    try:
        import yaml  # PyYAML, only for this comparison
    except ImportError:
        print("PyYAML is not installed: nothing to compare the reader with")
        return 0
    failed = 0
    for path in sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        same = yaml_subset.load(text, path) == yaml.safe_load(text)
        failed += not same
        print(f"{'ok' if same else 'DIFFERENT'}  {os.path.relpath(path, ROOT)}")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/src/reference/ is out of date")
    parser.add_argument("--self-test", action="store_true", help="compare the YAML reader with PyYAML")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    wanted = pages()
    present = {os.path.basename(p) for p in glob.glob(os.path.join(OUT_DIR, "*.md"))}
    if args.check:
        stale = [n for n, text in wanted.items() if not _same(os.path.join(OUT_DIR, n), text)]
        extra = sorted(present - set(wanted))
        if stale or extra:
            for n in stale:
                print(f"docs/src/reference/{n} is out of date with charts/slipway/crds/", file=sys.stderr)
            for n in extra:
                print(f"docs/src/reference/{n} has no CRD (a kind that is gone?)", file=sys.stderr)
            print("error: the API reference (docs/src/reference/) differs from the CRDs: run `make docs` "
                  "(or `python3 docs/tools/crd_reference.py`) and commit it", file=sys.stderr)
            return 1
        print(f"the API reference matches the {len(wanted)} CRDs")
        return 0
    os.makedirs(OUT_DIR, exist_ok=True)
    for n in sorted(present - set(wanted)):
        os.remove(os.path.join(OUT_DIR, n))
    for n, text in wanted.items():
        if not _same(os.path.join(OUT_DIR, n), text):
            with open(os.path.join(OUT_DIR, n), "w", encoding="utf-8") as f:
                f.write(text)
    print(f"wrote {len(wanted)} pages into docs/src/reference/")
    return 0


def _same(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == text
    except FileNotFoundError:
        return False


if __name__ == "__main__":
    sys.exit(main())
