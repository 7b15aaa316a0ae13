#!/usr/bin/python3
"""`make bench-scale`: prints one of m2pg's SQL statements as a pgbench script.

    scale_sql.py SCHEMA_C SYMBOL [TABLE]

The statement is taken from the C source itself (run through the C preprocessor, its adjacent
string literals joined), so the bench runs exactly the text m2pg sends. Its parameters become
pgbench variables, as m2pg binds them: $1 :re (name regex), $2 :lo and $3 :hi (inclusive
bounds), $4 :lim (row limit), $5 :res (resolution); $6, the source regex, is NULL (pgbench
cannot bind a NULL, and m2pg binds one when no source is asked for). TABLE, if given, replaces
the table metrics the statement reads (not metric_names nor the rollups).
"""
import re
import subprocess
import sys


def c_string_literals(text):
    """The concatenation of the C string literals in text, escapes decoded."""
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text, re.S):
        s = m.group(1)
        s = re.sub(r'\\(.)', lambda e: {'n': '\n', 't': '\t'}.get(e.group(1), e.group(1)), s)
        out.append(s)
    return ''.join(out)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit('usage: scale_sql.py SCHEMA_C SYMBOL [TABLE]')
    path, symbol = sys.argv[1], sys.argv[2]
    table = sys.argv[3] if len(sys.argv) == 4 else None
    src_dir = path.rsplit('/', 1)[0] if '/' in path else '.'
    pre = subprocess.run(['gcc', '-E', '-P', '-D_GNU_SOURCE', '-I', src_dir, '-I', 'src', path],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r'\b' + re.escape(symbol) + r'\s*\[\s*\]\s*=(.*?);\s*$', pre, re.S | re.M)
    if not m:
        sys.exit('scale_sql.py: %s not found in %s' % (symbol, path))
    sql = c_string_literals(m.group(1))
    if table:
        sql, n = re.subn(r'\bFROM metrics m\b', 'FROM ' + table + ' m', sql)
        if n == 0:
            sys.exit('scale_sql.py: %s reads no "FROM metrics m"' % symbol)
    names = {'1': ':re', '2': ':lo', '3': ':hi', '4': ':lim', '5': ':res', '6': 'NULL'}
    sql = re.sub(r'\$([1-6])(?![0-9])', lambda e: names[e.group(1)], sql)
    if re.search(r'\$[0-9]', sql):
        sys.exit('scale_sql.py: %s has parameters beyond $6' % symbol)
    print(sql.strip() + ';')


if __name__ == '__main__':
    main()
