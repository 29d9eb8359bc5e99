#!/usr/bin/env python3
"""schema_check.py SCHEMA FILE... - validate nstack configuration files
against a JSON Schema (config/*.schema.json) with python3-jsonschema.

The library reads its files with json-c in non-strict mode, as DMM did:
/* block */ and // line comments and trailing commas are accepted. JSON
Schema tools read strict JSON only, so this script first removes exactly
those (outside strings) and then validates. Exit status: 0 all valid,
1 some file invalid (one line per error: file, key path, reason),
2 usage error or unreadable schema.
"""
import json
import sys

import jsonschema


def strip_lenient(text):
    """Text without comments and trailing commas, strings untouched."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith('/*', i):
            end = text.find('*/', i + 2)
            i = n if end < 0 else end + 2
            out.append(' ')
        elif text.startswith('//', i):
            while i < n and text[i] != '\n':
                i += 1
        else:
            out.append(c)
            i += 1
    return drop_trailing_commas(''.join(out))


def drop_trailing_commas(text):
    """Removes a ',' whose next non-blank character closes ] or }."""
    out, in_str, i = [], False, 0
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == '\\':
                out.append(text[i + 1:i + 2])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == ',' and text[i + 1:].lstrip()[:1] in (']', '}'):
            pass
        else:
            out.append(c)
        i += 1
    return ''.join(out)


def where(err):
    path = ''
    for p in err.absolute_path:
        path += '[%d]' % p if isinstance(p, int) else ('.' if path else '') + p
    return path or '(top level)'


def check(validator, name):
    try:
        with open(name, encoding='utf-8') as f:
            doc = json.loads(strip_lenient(f.read()))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print('%s: not readable as JSON: %s' % (name, e))
        return False
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        print('%s: %s: %s' % (name, where(e), e.message))
    return not errors


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding='utf-8') as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print('%s: unusable schema: %s' % (argv[1], e), file=sys.stderr)
        return 2
    validator = cls(schema)
    ok = [check(validator, name) for name in argv[2:]]
    return 0 if all(ok) else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
