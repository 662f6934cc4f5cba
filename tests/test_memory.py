"""saelab.memory on fake /proc and /sys/fs/cgroup files: cgroup v2, v1, nested limits, and no limit."""
from pathlib import Path

import pytest

from saelab import memory, pretrained

GiB = 2**30


@pytest.fixture(autouse=True)
def no_cap(monkeypatch):
    monkeypatch.delenv(memory.CAP_SETTING, raising=False)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_meminfo(tmp_path: Path, available: int) -> Path:
    path = tmp_path / "meminfo"
    write(path, f"MemTotal:       32000000 kB\nMemFree:        1000 kB\nMemAvailable:   {available // 1024} kB\n")
    return path


def fake_v2(tmp_path: Path, limit: str, current: int, inactive: int = 0, path: str = "/") -> tuple[Path, Path]:
    """A cgroup v2 tree with this process at `path` (a container's own namespace shows "/")."""
    root = tmp_path / "cgroup"
    folder = root.joinpath(*[p for p in path.split("/") if p])
    write(root / "cgroup.controllers", "cpu io memory pids\n")
    write(folder / "memory.max", limit + "\n")
    write(folder / "memory.current", f"{current}\n")
    write(folder / "memory.stat", f"anon {current - inactive}\nfile {inactive}\ninactive_file {inactive}\n")
    write(tmp_path / "self_cgroup", f"0::{path}\n")
    return root, tmp_path / "self_cgroup"


def fake_v1(tmp_path: Path, limit: int, usage: int, inactive: int = 0, path: str = "/") -> tuple[Path, Path]:
    """A cgroup v1 memory controller with this process at `path`."""
    root = tmp_path / "cgroup"
    folder = (root / "memory").joinpath(*[p for p in path.split("/") if p])
    write(folder / "memory.limit_in_bytes", f"{limit}\n")
    write(folder / "memory.usage_in_bytes", f"{usage}\n")
    write(folder / "memory.stat", f"cache {inactive}\nrss {usage - inactive}\ntotal_inactive_file {inactive}\n")
    write(tmp_path / "self_cgroup", f"12:pids:/\n4:memory:{path}\n1:name=systemd:/\n0::/\n")
    return root, tmp_path / "self_cgroup"


def test_v2_limit_minus_usage_is_what_is_left(tmp_path):
    root, own = fake_v2(tmp_path, str(2 * GiB), current=GiB // 2)
    meminfo = fake_meminfo(tmp_path, 20 * GiB)  # the host's free memory: far more than the container may use
    assert memory.cgroup_room(root, own) == (2 * GiB, 2 * GiB - GiB // 2)
    assert memory.available_memory_bytes(meminfo, root, own) == 2 * GiB - GiB // 2


def test_v2_max_means_no_limit(tmp_path):
    root, own = fake_v2(tmp_path, "max", current=5 * GiB)
    meminfo = fake_meminfo(tmp_path, 7 * GiB)
    assert memory.cgroup_room(root, own) == (None, None)
    assert memory.available_memory_bytes(meminfo, root, own) == 7 * GiB


def test_v1_limit_minus_usage_is_what_is_left(tmp_path):
    root, own = fake_v1(tmp_path, 2 * GiB, usage=GiB, path="/docker/abc")
    meminfo = fake_meminfo(tmp_path, 20 * GiB)
    assert memory.available_memory_bytes(meminfo, root, own) == GiB


def test_v1_huge_limit_means_no_limit(tmp_path):
    root, own = fake_v1(tmp_path, 9223372036854771712, usage=3 * GiB)
    meminfo = fake_meminfo(tmp_path, 6 * GiB)
    assert memory.cgroup_room(root, own) == (None, None)
    assert memory.available_memory_bytes(meminfo, root, own) == 6 * GiB


def test_machine_memory_wins_when_it_is_lower(tmp_path):
    root, own = fake_v1(tmp_path, 8 * GiB, usage=GiB)
    assert memory.available_memory_bytes(fake_meminfo(tmp_path, 3 * GiB), root, own) == 3 * GiB


def test_inactive_page_cache_counts_as_free(tmp_path):
    """Files read earlier fill a cgroup's usage with page cache that the kernel gives back under pressure."""
    root, own = fake_v2(tmp_path, str(2 * GiB), current=2 * GiB - 2**20, inactive=GiB)
    assert memory.cgroup_room(root, own)[1] == GiB + 2**20


@pytest.mark.parametrize("version", [1, 2])
def test_active_page_cache_counts_as_free_unless_a_process_maps_it(tmp_path, version):
    """Model files an earlier notebook read stay in the cgroup as active cache: reclaimable, unless still mapped."""
    used, active, inactive, mapped = GiB // 2, GiB // 2, GiB // 4, GiB // 8
    usage = used + active + inactive
    if version == 1:
        root, own = fake_v1(tmp_path, 2 * GiB, usage=usage)
        stat = root / "memory" / "memory.stat"
        keys = memory.V1_CACHE_KEYS
    else:
        root, own = fake_v2(tmp_path, str(2 * GiB), current=usage)
        stat = root / "memory.stat"
        keys = memory.V2_CACHE_KEYS
    write(stat, "".join(f"{key} {value}\n" for key, value in zip(keys, (active, inactive, mapped))))
    assert memory.cgroup_room(root, own) == (2 * GiB, 2 * GiB - used - mapped)


def test_a_parent_limit_counts_too(tmp_path):
    root, own = fake_v1(tmp_path, 9223372036854771712, usage=GiB, path="/outer/inner")
    write(root / "memory" / "outer" / "memory.limit_in_bytes", f"{3 * GiB // 2}\n")
    write(root / "memory" / "outer" / "memory.usage_in_bytes", f"{GiB}\n")
    assert memory.cgroup_room(root, own) == (3 * GiB // 2, GiB // 2)


def test_no_cgroup_and_no_meminfo_is_unknown(tmp_path):
    missing = tmp_path / "nothing"
    assert memory.available_memory_bytes(missing, missing, missing) is None
    assert memory.gib(None) == "unknown" and memory.gib(1.84 * GiB) == "1.8 GB"


def test_the_cap_setting_pretends_a_smaller_machine(tmp_path, monkeypatch):
    meminfo = fake_meminfo(tmp_path, 20 * GiB)
    monkeypatch.setenv(memory.CAP_SETTING, "1.5")
    assert memory.available_memory_bytes(meminfo, tmp_path, tmp_path / "x") == int(1.5 * GiB)
    monkeypatch.setenv(memory.CAP_SETTING, "lots")
    with pytest.raises(ValueError, match="SAELAB_MEMORY_GB must be a number"):
        memory.available_memory_bytes(meminfo, tmp_path, tmp_path / "x")


def test_batch_sizes_shrink_with_memory():
    assert memory.fit_batch_size(32, bytes_per_item=10 * 2**20, available=16 * GiB) == 32
    assert memory.fit_batch_size(32, bytes_per_item=100 * 2**20, available=GiB, share=0.25) == 2
    assert memory.fit_batch_size(32, bytes_per_item=GiB, available=GiB, minimum=1) == 1
    with pytest.raises(ValueError, match="must be >= 1"):
        memory.fit_batch_size(0, 10)


def test_auto_sae_size_reads_the_container_limit(tmp_path, monkeypatch):
    """The host has 20 GB free, the container 1.5 GB: 'auto' must pick the 32k SAE."""
    root, own = fake_v2(tmp_path, str(2 * GiB), current=GiB // 2)
    meminfo = fake_meminfo(tmp_path, 20 * GiB)
    monkeypatch.setattr(memory, "PROC_MEMINFO", str(meminfo))
    monkeypatch.setattr(memory, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(memory, "PROC_SELF_CGROUP", str(own))
    assert pretrained.auto_size() == "32k"
    fake_v2(tmp_path, "max", current=GiB // 2)
    assert pretrained.auto_size() == "128k"


@pytest.fixture
def container(tmp_path, monkeypatch):
    """Point saelab.memory at a fake cgroup v2 container whose limit and usage a test sets."""
    meminfo = fake_meminfo(tmp_path, 20 * GiB)  # the host: plenty

    def limit(max_bytes: int, used: int) -> None:
        root, own = fake_v2(tmp_path, str(max_bytes), current=used)
        monkeypatch.setattr(memory, "PROC_MEMINFO", str(meminfo))
        monkeypatch.setattr(memory, "CGROUP_ROOT", str(root))
        monkeypatch.setattr(memory, "PROC_SELF_CGROUP", str(own))
    return limit


def test_too_little_memory_for_anything_says_so_before_loading(container, monkeypatch):
    from saelab import course

    loaded = []
    monkeypatch.setattr(course, "load_model", lambda *a, **k: loaded.append(a) or pytest.fail("loaded a model"))
    monkeypatch.delenv("SAELAB_REQUIRE_ONLINE", raising=False)
    container(512 * 2**20, used=400 * 2**20)  # 112 MB left: nothing fits
    for offline in ("1", ""):
        monkeypatch.setenv("SAELAB_OFFLINE", offline)
        with pytest.raises(course.NotEnoughMemory) as err:
            course.load_world()
        message = str(err.value)
        assert "needs about 0.4 GB" in message and "only 0.1 GB is free" in message
        assert "Shut Down" in message and "colab.research.google.com" in message
    assert loaded == []


def test_gpt2_that_does_not_fit_falls_back_to_the_tiny_world_and_says_why(container, monkeypatch):
    from saelab import course

    monkeypatch.delenv("SAELAB_OFFLINE", raising=False)
    monkeypatch.delenv("SAELAB_REQUIRE_ONLINE", raising=False)
    real_load = course.load_model
    monkeypatch.setattr(course, "load_model",
                        lambda name, **k: real_load(name, **k) if name == "tiny-world" else pytest.fail("tried gpt2"))
    container(GiB, used=GiB // 4)  # 0.75 GB left: the tiny world fits, GPT-2 does not
    world = course.load_world()
    assert world.offline
    assert "gpt2 could not be loaded (it needs about 1.0 GB of memory and only 0.8 GB is free" in world.banner()
    assert "SAELAB_OFFLINE=1" in world.banner() and "\n" not in world.banner()
    monkeypatch.setenv("SAELAB_REQUIRE_ONLINE", "1")  # the online test runs fail instead, with the reason
    with pytest.raises(course.OnlineWorldError, match="only 0.8 GB is free"):
        course.load_world()
