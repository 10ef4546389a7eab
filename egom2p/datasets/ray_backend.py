"""Scale-out on Ray: the ``backend=ray`` shard runner and :class:`RaySource`, clips from
actors on many machines for a learner on one.

The only module of egosim that imports Ray (inside its functions; ``pip install
'egosim[ray]'``), so the local backend and the live stream never load it.

**Shards** (:func:`run_ray`): ``workers`` actors (one CPU each, each keeping its
process warm: modules, motion prior, controller and tokenizers load once) take the
unfinished shards one at a time and run :func:`~egosim.egom2p.datasets.shards.make_shard`,
the same function as the local backend: the same bytes. Every node must see
``output_dir`` at the same absolute path (a shared file system) and have egosim installed
(or ship it with a Ray ``runtime_env``). ``ray_address``: None starts a local instance
(``num_cpus = workers``, no dashboard, ``ray_temp_dir`` as its session folder), ``"auto"``
joins the cluster this machine belongs to (``ray start --head`` / ``ray start
--address=...`` on the nodes), ``"ray://host:10001"`` connects a remote client.

**Stream** (:class:`RaySource`): actor ``w`` runs ``ClipBuilder(config, seed=seed,
worker=w)``; the source yields clip 0 of actor 0, clip 0 of actor 1, ..., clip 1 of actor
0, ... (the order of a DataLoader over :class:`~egosim.egom2p.stream.SimStream` with
``num_workers = num_actors``, and the same clips), each actor ``prefetch`` clips ahead.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import IterableDataset

from egosim.egom2p.datasets.shards import ShardJob, make_shard, warm_up

__all__ = ["RaySource", "import_ray", "ray_session", "run_ray"]

#: Object store of a local Ray instance started here (bytes): shard records and clips in
#: flight are small.
LOCAL_OBJECT_STORE = 200 * 2**20


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        RuntimeError: Ray is not installed (says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError("backend=ray (and RaySource) need Ray: pip install "
                           "'egosim[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, temp_dir: str | None = None,
                num_cpus: int | None = None, **init: Any) -> Iterator[Any]:
    """Ray, initialised for the block: an instance already running in this process is
    used as it is (and left running); otherwise ``address`` None starts a local one
    (``num_cpus``, ``temp_dir``, no dashboard) and ``"auto"`` / ``"ray://..."`` connects,
    and the block's end shuts it down. ``init``: more ``ray.init`` options."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **init}
        if address is None:
            kw.setdefault("num_cpus", num_cpus)
            kw.setdefault("object_store_memory", LOCAL_OBJECT_STORE)
            if temp_dir is not None:
                kw.setdefault("_temp_dir", str(temp_dir))
        else:
            kw["address"] = address
        ray.init(**kw)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


class _ShardWorker:
    """A Ray actor that makes shards (one torch thread)."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)

    def warm(self, job: ShardJob) -> float:
        return warm_up(job)

    def run(self, job: ShardJob) -> dict[str, Any]:
        return make_shard(job)


def run_ray(todo: Sequence[ShardJob], cfg: Any, bar: Any, warm: bool = False
            ) -> tuple[list[dict[str, Any]], float, float]:
    """Make the shards ``todo`` on Ray actors (module docstring); returns ``(records,
    startup_s, seconds)``: startup is starting Ray and the actors (and warming them when
    ``warm``), seconds the making. ``cfg``: the job's
    :class:`~egosim.egom2p.generate_config.GenerateConfig` (``workers``, ``ray_address``,
    ``ray_temp_dir``); ``bar``: a tqdm bar updated per finished shard."""
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    with ray_session(cfg.ray_address, cfg.ray_temp_dir, num_cpus=cfg.workers) as ray:
        actor = ray.remote(num_cpus=1)(_ShardWorker)
        n = min(cfg.workers, len(todo))
        actors = [actor.remote() for _ in range(n)]
        try:
            ray.get([a.warm.remote(todo[0]) if warm else a.__ray_ready__.remote()
                     for a in actors])
            t1 = time.perf_counter()
            queue = deque(todo)
            running: dict[Any, Any] = {}
            for a in actors:
                if queue:
                    running[a.run.remote(queue.popleft())] = a
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in ready:
                    a = running.pop(ref)
                    rec = ray.get(ref)
                    records.append(rec)
                    bar.update(rec["clips"])
                    if queue:
                        running[a.run.remote(queue.popleft())] = a
            t2 = time.perf_counter()
        finally:
            for a in actors:
                ray.kill(a)
    return records, t1 - t0, t2 - t1


class _ClipWorker:
    """A Ray actor running one clip builder (:class:`RaySource`)."""

    def __init__(self, config: dict[str, Any], seed: int, worker: int, tokenized: bool
                 ) -> None:
        import torch

        from egosim.egom2p.clips import ClipBuilder

        torch.set_num_threads(1)
        self.builder = ClipBuilder(config, seed=seed, worker=worker, threads=1)
        self.hook = None
        if tokenized:
            from egosim.egom2p.stream import default_tokenize

            self.hook = default_tokenize(self.builder.modalities)

    def next(self) -> dict[str, Any]:
        clip = self.builder.next_clip()
        return clip if self.hook is None else self.hook(clip)

    def times(self) -> dict[str, float]:
        return {"clips": float(self.builder.clips_made), **self.builder.times}


class RaySource(IterableDataset):
    """Clips from ``num_actors`` Ray actors in a fixed order (module docstring): a torch
    ``IterableDataset`` for the learner's process (``DataLoader(source, batch_size=None,
    num_workers=0)``, or iterate it directly).

    Args:
        num_actors: clip builders (one CPU each), actor ``w`` is stream worker ``w``.
        seed: the base seed ``s``.
        config: a :class:`~egosim.egom2p.config.ClipConfig`, a shipped name or YAML path,
            a dict, or None (the defaults); overrides: dotted ``key=value`` overrides.
        tokenized: the actors add ``tokens_<modality>`` (the shipped tokenizers).
        prefetch: clips each actor makes ahead (>= 1).
        address: None starts a local Ray instance (unless one runs in this process),
            ``"auto"`` joins the cluster.
        ray_init: more ``ray.init`` options for an instance started here.

    Raises:
        egosim.config.ConfigError: a bad clip config (names the key).
    """

    def __init__(self, num_actors: int = 2, seed: int = 0, config: Any = None,
                 overrides: Sequence[str] | dict[str, Any] | None = None,
                 tokenized: bool = False, prefetch: int = 2, address: str | None = None,
                 ray_init: dict[str, Any] | None = None) -> None:
        from egosim.config import dump_config
        from egosim.egom2p.clips import resolve_clip_config

        super().__init__()
        if num_actors < 1 or prefetch < 1 or seed < 0:
            raise ValueError(f"num_actors and prefetch must be >= 1 and seed >= 0; got "
                             f"{num_actors}, {prefetch}, {seed}")
        self.cfg = resolve_clip_config(config, overrides)
        self._config = dump_config(self.cfg, mode="json")
        self.num_actors, self.seed, self.prefetch = int(num_actors), int(seed), int(prefetch)
        self.tokenized, self.address = bool(tokenized), address
        self.ray_init = dict(ray_init or {})

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Clips without end, from clip 0 of every actor."""
        init = dict(self.ray_init)
        with ray_session(self.address, init.pop("_temp_dir", None),
                         num_cpus=init.pop("num_cpus", self.num_actors), **init) as ray:
            actor = ray.remote(num_cpus=1)(_ClipWorker)
            actors = [actor.remote(self._config, self.seed, w, self.tokenized)
                      for w in range(self.num_actors)]
            pending = [deque(a.next.remote() for _ in range(self.prefetch)) for a in actors]
            try:
                while True:
                    for w, a in enumerate(actors):
                        ref = pending[w].popleft()
                        pending[w].append(a.next.remote())
                        yield ray.get(ref)
            finally:
                for a in actors:
                    ray.kill(a)
