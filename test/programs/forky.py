# forky.py ROUNDS MB: a program that forks while its memory is swapped out.
# The parent holds MB of data and forks a child per round; the child checks
# the first byte of every page and leaves with os._exit (no upvm_fini),
# and the parent rewrites everything.  Prints a checksum to compare.
import os, sys
rounds, mb = int(sys.argv[1]), int(sys.argv[2])
n = mb << 20
buf = bytearray(n)
def fill(g):
    pat = bytes(((i * 7 + g) & 255) for i in range(4096))
    for off in range(0, n, 4096):
        buf[off:off + 4096] = pat
fill(0)
for r in range(1, rounds + 1):
    pid = os.fork()
    if pid == 0:
        ok = all(buf[off] == ((r - 1) & 255) for off in range(0, n, 4096))
        os._exit(0 if ok else 1)
    _, st = os.waitpid(pid, 0)
    if st != 0:
        print("child saw wrong data", r); sys.exit(1)
    fill(r)
print("ok", sum(buf[off + 5] for off in range(0, n, 1 << 16)))
