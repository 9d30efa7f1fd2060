#!/usr/bin/env python3
"""Turns a varlink IDL file into a C header holding it as a string: embed-idl.py INPUT OUTPUT NAME."""
import json
import sys

text = open(sys.argv[1], encoding="utf-8").read()
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(f"/* generated from {sys.argv[1].rsplit('/', 1)[-1]} */\n")
    f.write(f"static const char {sys.argv[3]}[] = {json.dumps(text)};\n")
