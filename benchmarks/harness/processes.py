"""Readings from /proc: process trees, their RSS and CPU time, the machine's busy time, service pids.

Linux only (proc(5)); a process that exits between two reads reads as absent, never as an error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class ProcRow(NamedTuple):
    """One process from /proc/<pid>/stat (fields 4, 2, 14+15, 24 and 22 of proc(5))."""

    ppid: int
    comm: str
    cpu_s: float  # utime + stime, seconds
    rss_bytes: int
    start_ticks: int  # clock ticks after boot


def _stat_fields(data: bytes) -> list[bytes]:
    # comm may hold spaces and parentheses: the fields start after the last ")"
    return data[data.rindex(b")") + 2:].split()


def proc_table() -> dict[int, ProcRow]:
    """{pid: ProcRow} of every process readable now."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        comm = data[data.index(b"(") + 1:data.rindex(b")")].decode(errors="replace")
        fields = _stat_fields(data)
        table[int(entry.name)] = ProcRow(ppid=int(fields[1]), comm=comm,
                                         cpu_s=(int(fields[11]) + int(fields[12])) / CLK_TCK,
                                         rss_bytes=int(fields[21]) * PAGE_SIZE, start_ticks=int(fields[19]))
    return table


def tree(table: dict[int, ProcRow], roots: list[int]) -> list[int]:
    """The pids of `roots` (those still in `table`) and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row.ppid, []).append(pid)
    found, todo = [], [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants now; [root] when it is gone (its RSS then reads 0)."""
    return tree(proc_table(), [root]) or [root]


def vm_rss_kib(pid: int) -> int:
    """VmRSS of /proc/<pid>/status in KiB; 0 for a process gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process in seconds; None for no pid or a process gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = _stat_fields(f.read())
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_ticks(pid: int) -> str | None:
    """The kernel's start time of a process (field 22): with the pid, an identity a recycled pid does not share."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return _stat_fields(f.read())[19].decode()
    except (OSError, IndexError):
        return None


def boot_ticks_now() -> float:
    """Clock ticks since boot, the unit of ProcRow.start_ticks."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * CLK_TCK


def system_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def loadavg() -> float:
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def find_server(program: str, *needles: str) -> int | None:
    """The pid of the local service whose executable's name starts with `program` and whose command line
    contains all `needles` (MariaDB by its port, MinIO by its address); None when there is none."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if Path(argv[0]).name.startswith(program) and all(n in " ".join(argv) for n in needles):
                return int(entry.name)
    return None
