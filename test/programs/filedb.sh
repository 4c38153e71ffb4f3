# SPDX-License-Identifier: BSD-2-Clause
#
# filedb.sh: the databases files.sh and filebench.sh map, sourced by both.
#
# make_sqlite_db FILE ROWS: a sqlite3 database of ROWS rows of a 1000-byte
# random blob and a 16-character random key, indexed, 4 KiB pages (about
# 1.15 KiB of file per row)
make_sqlite_db() {
	sqlite3 "$1" >/dev/null <<SQL
PRAGMA page_size=4096;
PRAGMA journal_mode=OFF;
CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB, s TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
    WHERE x < $2)
INSERT INTO t SELECT x, randomblob(1000), hex(randomblob(8)) FROM c;
CREATE INDEX ts ON t(s);
SQL
}

# lmdb_input N MAPSIZE WIDTH: mdb_load's input (print format) for N keys
# with values of about WIDTH + 10 bytes, in a map of MAPSIZE bytes
lmdb_input() {
	printf 'VERSION=3\nformat=print\ntype=btree\n'
	printf 'mapsize=%s\nHEADER=END\n' "$2"
	awk -v n="$1" -v w="$3" 'BEGIN { for (i = 0; i < n; i++)
	    printf " k%08d\n v%08d-%0*d\n", i, i * 7919 % 1000003, w, i }'
	echo DATA=END
}
