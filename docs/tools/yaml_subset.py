"""A reader for the YAML that Slipway's crdgen writes (serde_yaml_ng, block style), with the
Python standard library alone, so that the docs tools need nothing installed.

It reads: block mappings and sequences (a sequence may sit at its key's indentation, as libyaml
writes it), plain scalars (null, booleans, integers and floats resolved as YAML 1.2's core schema
does), single- and double-quoted scalars, literal and folded block scalars with chomping and
indentation indicators, the empty flow collections `{}` and `[]`, full-line comments and a
leading `---`. Anything else is an error that names the line, never a silent misreading.
`python3 docs/tools/crd_reference.py --self-test` compares it with PyYAML where PyYAML is
installed.
"""

import json
import re

__all__ = ["load", "YamlError"]


class YamlError(ValueError):
    pass


_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _plain(text, where):
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text in (".inf", "+.inf", ".Inf", "+.Inf"):
        return float("inf")
    if text in ("-.inf", "-.Inf"):
        return float("-inf")
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if text[0] in "{[&*!|>%@`":
        raise YamlError(f"{where}: unsupported YAML construct: {text[:40]!r}")
    if " #" in text:
        raise YamlError(f"{where}: a comment after a value is not supported")
    return text


def _single_quoted(text, where):
    """`text` starts with a quote; returns (value, rest after the closing quote)."""
    out, i = [], 1
    while i < len(text):
        c = text[i]
        if c == "'":
            if text[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), text[i + 1 :]
        out.append(c)
        i += 1
    raise YamlError(f"{where}: unterminated single-quoted scalar")


_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
    "_": "\xa0", "L": "\u2028", "P": "\u2029",
}


def _double_quoted(text, where):
    out, i = [], 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), text[i + 1 :]
        if c == "\\":
            e = text[i + 1 : i + 2]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            width = {"x": 2, "u": 4, "U": 8}.get(e)
            if width is None:
                raise YamlError(f"{where}: unknown escape \\{e}")
            out.append(chr(int(text[i + 2 : i + 2 + width], 16)))
            i += 2 + width
            continue
        out.append(c)
        i += 1
    raise YamlError(f"{where}: unterminated double-quoted scalar (multi-line ones are not supported)")


def _scalar(text, where):
    text = text.strip()
    if text.startswith("'"):
        value, rest = _single_quoted(text, where)
    elif text.startswith('"'):
        value, rest = _double_quoted(text, where)
    else:
        return _plain(text, where)
    if rest.strip() and not rest.strip().startswith("#"):
        raise YamlError(f"{where}: text after a quoted scalar: {rest!r}")
    return value


class _Reader:
    def __init__(self, text, name):
        self.name = name
        self.lines = []
        for n, raw in enumerate(text.split("\n"), 1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlError(f"{name}:{n}: a tab in the indentation")
            self.lines.append([n, raw])
        self.i = 0

    def where(self, i=None):
        i = self.i if i is None else i
        return f"{self.name}:{self.lines[i][0] if i < len(self.lines) else 'end'}"

    def skip_blank(self):
        while self.i < len(self.lines):
            s = self.lines[self.i][1].strip()
            if s == "" or s.startswith("#") or (s == "---" and self.lines[self.i][1] == "---"):
                self.i += 1
                continue
            break

    def peek(self):
        """(indent, content) of the next meaningful line, or None at the end."""
        self.skip_blank()
        if self.i >= len(self.lines):
            return None
        raw = self.lines[self.i][1]
        content = raw.lstrip(" ")
        return len(raw) - len(content), content

    def node(self, indent):
        """The block node whose first line is the next one, at exactly `indent`."""
        head = self.peek()
        if head is None or head[0] != indent:
            raise YamlError(f"{self.where()}: expected a node at column {indent}")
        if head[1] == "-" or head[1].startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def sequence(self, indent):
        items = []
        while True:
            head = self.peek()
            if head is None or head[0] != indent or not (head[1] == "-" or head[1].startswith("- ")):
                return items
            rest = head[1][2:] if head[1] != "-" else ""
            if rest.strip() == "":
                self.i += 1
                nxt = self.peek()
                if nxt is None or nxt[0] <= indent:
                    items.append(None)
                else:
                    items.append(self.node(nxt[0]))
                continue
            inner = indent + 2 + (len(rest) - len(rest.lstrip(" ")))
            rest = rest.lstrip(" ")
            if rest[0] in "'\"" or not self._is_key_line(rest):
                if rest[0] in "|>":
                    raise YamlError(f"{self.where()}: a block scalar as a sequence item is not supported")
                items.append(_scalar(rest, self.where()))
                self.i += 1
                continue
            # A nested mapping or sequence starting on the item's line: rewrite the line so that
            # its content sits at its own column, and read it as a block there.
            self.lines[self.i][1] = " " * inner + rest
            items.append(self.node(inner))

    @staticmethod
    def _is_key_line(text):
        if text.startswith("- ") or text == "-":
            return True
        return _split_key(text) is not None

    def mapping(self, indent):
        result = {}
        while True:
            head = self.peek()
            if head is None or head[0] != indent:
                if head is not None and head[0] > indent:
                    raise YamlError(f"{self.where()}: unexpected indentation")
                return result
            if head[1].startswith("- ") or head[1] == "-":
                return result
            split = _split_key(head[1])
            if split is None:
                raise YamlError(f"{self.where()}: expected `key: value`, found {head[1][:60]!r}")
            key, rest = split
            if key in result:
                raise YamlError(f"{self.where()}: duplicate key {key!r}")
            where = self.where()
            self.i += 1
            rest = rest.strip()
            if rest and rest[0] in "|>":
                result[key] = self.block_scalar(rest, indent, where)
            elif rest and not rest.startswith("#"):
                result[key] = _scalar(rest, where)
            else:
                nxt = self.peek()
                if nxt is None:
                    result[key] = None
                elif nxt[0] > indent:
                    result[key] = self.node(nxt[0])
                elif nxt[0] == indent and (nxt[1].startswith("- ") or nxt[1] == "-"):
                    result[key] = self.sequence(indent)
                else:
                    result[key] = None

    def block_scalar(self, header, indent, where):
        m = re.match(r"^([|>])([1-9]?)([-+]?)([1-9]?)\s*(#.*)?$", header)
        if not m:
            raise YamlError(f"{where}: malformed block scalar header {header!r}")
        style, chomp = m.group(1), m.group(3)
        explicit = m.group(2) or m.group(4)
        raw = []
        while self.i < len(self.lines):
            line = self.lines[self.i][1]
            if line.strip() == "" or len(line) - len(line.lstrip(" ")) > indent:
                raw.append(line)
                self.i += 1
                continue
            break
        if explicit:
            content_indent = indent + int(explicit)
        else:
            first = next((l for l in raw if l.strip() != ""), None)
            content_indent = len(first) - len(first.lstrip(" ")) if first is not None else indent + 1
        body = []
        for line in raw:
            if line.strip() == "" and len(line) <= content_indent:
                body.append("")
            else:
                if len(line) - len(line.lstrip(" ")) < content_indent:
                    raise YamlError(f"{where}: a block scalar line less indented than its first")
                body.append(line[content_indent:])
        trailing = 0
        while body and body[-1] == "":
            body.pop()
            trailing += 1
        text = "\n".join(body) if style == "|" else _fold(body)
        if chomp == "+":
            return text + ("\n" if body else "") + "\n" * trailing
        if chomp == "-" or not body:
            return text
        return text + "\n"


def _fold(lines):
    out = ""
    prev_blank = True
    for line in lines:
        if line == "":
            out += "\n"
            prev_blank = True
            continue
        if out and not prev_blank and not line.startswith(" "):
            out += " "
        out += line
        prev_blank = False
    return out


def _split_key(text):
    """(key, rest) of a `key: value` line, or None when the line is not one."""
    if text.startswith("'"):
        try:
            key, rest = _single_quoted(text, "")
        except YamlError:
            return None
    elif text.startswith('"'):
        try:
            key, rest = _double_quoted(text, "")
        except YamlError:
            return None
    else:
        m = re.match(r"^(.*?):( |$)", text)
        if not m or m.group(1) == "" or m.group(1)[0] in "-[{#":
            return None
        return m.group(1).rstrip(), text[m.end() :]
    if rest.startswith(": ") or rest == ":":
        return key, rest[1:]
    return None


def load(text, name="<yaml>"):
    """The one document of `text`."""
    reader = _Reader(text, name)
    head = reader.peek()
    if head is None:
        return None
    if head[0] != 0:
        raise YamlError(f"{reader.where()}: the document must start at column 0")
    if not (head[1].startswith("- ") or head[1] == "-") and _split_key(head[1]) is None:
        value = _scalar(head[1], reader.where())
        reader.i += 1
    else:
        value = reader.node(0)
    if reader.peek() is not None:
        raise YamlError(f"{reader.where()}: text after the document (several documents are not supported)")
    return value


if __name__ == "__main__":
    import sys

    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            print(json.dumps(load(f.read(), path), indent=1)[:2000])
