#!/usr/bin/env python3
"""Renders a varlink interface definition (IDL) as a section 7 man page: the interface's own comments
become the description, each method, type and error gets an entry, and the full IDL is reproduced.
Usage: varlink-man.py IDL PROGRAM SOCKET-UNIT OUTPUT"""
import json
import re
import sys


def esc(line):
    line = line.replace("\\", "\\e")
    return "\\&" + line if line.startswith((".", "'")) else line


def text(lines):
    """Comment lines as troff text; `name` becomes italic."""
    return [re.sub(r"`([^`]+)`", r"\\fI\1\\fR", esc(l)) if l.strip() else ".PP" for l in lines]


def parse(idl):
    header, members, comment = [], [], []
    name, lines, i = None, idl.splitlines(), 0
    while i < len(lines):
        raw = lines[i].rstrip()
        s = raw.strip()
        i += 1
        if s.startswith("#"):
            comment.append(s[1:].strip())
            continue
        if not s:
            if name is None and comment:
                header.extend(comment + [""])
                comment = []
            continue
        m = re.match(r"(interface|method|error|type)\s+([\w.]+)", s)
        if not m:
            raise SystemExit(f"unexpected IDL line: {raw}")
        kind, ident = m.groups()
        if kind == "interface":
            name = ident
            header.extend(comment)
            comment = []
            continue
        decl = [raw]
        depth = s.count("(") - s.count(")")
        while (depth > 0 or (kind == "method" and "->" not in " ".join(decl))) and i < len(lines):
            decl.append(lines[i].rstrip())
            depth += lines[i].count("(") - lines[i].count(")")
            i += 1
        members.append((kind, ident, decl, comment))
        comment = []
    return name, [l for l in header], members


def example_value(t):
    t = t.strip().lstrip("?")
    return {"int": 0, "string": "...", "bool": False, "float": 0.0}.get(t, {} if not t.startswith("[]") else [])


def main():
    idl_path, program, socket_unit, out = sys.argv[1:5]
    idl = open(idl_path, encoding="utf-8").read()
    name, header, members = parse(idl)
    if not name:
        raise SystemExit(f"{idl_path}: no interface line")
    short = name.rsplit(".", 1)[1]
    o = [f'.TH {name.upper()} 7 "" "switchyard" "switchyard"', ".SH NAME",
         f"{name} \\- varlink interface of {program}", ".SH SYNOPSIS", f".I /run/switchyard/{name}",
         ".SH DESCRIPTION"]
    o += text(header) or [f"The varlink interface of {program}."]
    o += [".PP", f"The socket is created by \\fB{socket_unit}\\fR",
          f"and activates \\fB{program}\\fR; the service exits when idle. Messages are JSON objects, each",
          "terminated by a NUL byte; file descriptors travel as SCM_RIGHTS with the call and integer",
          "parameters name them by index in the call's descriptor array."]
    for kind, title in (("method", "METHODS"), ("type", "TYPES"), ("error", "ERRORS")):
        group = [m for m in members if m[0] == kind]
        if not group:
            continue
        o.append(f".SH {title}")
        for _, ident, decl, comment in group:
            o += [".TP", f".B {name}.{ident}" if kind != "type" else f".B {ident}", ".nf"]
            o += [esc(l.rstrip()) for l in decl]
            o += [".fi", ".RS"] + text(comment) + [".RE"]
    o += [".SH INTERFACE DEFINITION", ".nf"] + [esc(l) for l in idl.rstrip().splitlines()] + [".fi"]
    methods = [m for m in members if m[0] == "method"]
    if methods:
        _, ident, decl, _ = methods[0]
        args = " ".join(decl).split("(", 1)[1].split(")", 1)[0]
        params = {}
        for p in args.split(","):
            if ":" in p:
                k, t = p.split(":", 1)
                if not t.strip().startswith("?"):
                    params[k.strip()] = example_value(t)
        call = json.dumps({"method": f"{name}.{ident}", "parameters": params})
        o += [".SH EXAMPLES", f"Calling \\fB{ident}\\fR by hand with \\fBsocat\\fR(1), as root:", ".PP", ".nf", ".RS",
              esc(f"printf '%s\\0' '{call}' |"), esc(f"  socat -t5 - UNIX-CONNECT:/run/switchyard/{name} | tr '\\0' '\\n'"),
              ".RE", ".fi", ".PP", "From Python, with the client in the source tree's \\fItests/lib/varlink.py\\fR:",
              ".PP", ".nf", ".RS", "import varlink", esc(f'with varlink.Client("/run/switchyard/{name}") as c:'),
              esc(f'    print(c.call("{name}.{ident}", {json.dumps(params)}))'), ".RE", ".fi"]
    o += [".SH SEE ALSO", f".BR {program} (8)"]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
