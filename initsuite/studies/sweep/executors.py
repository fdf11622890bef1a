"""Where a sweep's groups run: in process (the default) or on a Dask distributed cluster.

A *group* is every cell of one (arch, device, dtype, width, seed): the unit that keeps the
engine's sharing (common random numbers, depth prefixes) and the unit of storage (one chunk,
:mod:`initsuite.results.chunks`). A distributed sweep submits one task per group that is not yet
stored; each worker rebuilds the configuration from its plain dict, computes the group and
writes its chunk into the output directory itself (a filesystem every worker reaches), and
returns only its cell count. The driver tracks nothing else: if it dies, the chunks written
stay, and the same command with ``--resume`` submits only what is missing (idempotent: a
chunk's name is the hash of its cells, and a second copy of a chunk is dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from initsuite.core.errors import Arg, InitsuiteError, InitsuiteTypeError
from initsuite.results.store import first_line

__all__ = ["DaskExecutor"]


# the schemes whose addresses are HOST:PORT (distributed's tcp, tls and websocket comms);
# others (inproc, ucx) go to Dask as given
_HOST_PORT_SCHEMES = ("tcp", "tls", "ws", "wss")


def _check_address(address: object) -> None:
    """Raise :class:`InitsuiteError` for a scheduler address Dask cannot parse, before
    connecting: ``tcp://HOST:PORT`` or ``HOST:PORT`` (tcp), or another of Dask's schemes
    (``tls://``, ``ws://``, ``wss://``, ``ucx://``, ``inproc://``), as the scheduler prints
    it; a port from 1 to 65535."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    if not isinstance(address, str):
        raise InitsuiteTypeError(
            "a Dask scheduler address is a string such as 'tcp://host:8786', got "
            f"{type(address).__name__}"
        )
    hint = ("give the address the scheduler prints, tcp://HOST:PORT or HOST:PORT (e.g. "
            "tcp://10.0.0.5:8786)")  # fmt: skip
    named = (Arg("scheduler"), f" {address!r}")
    try:
        scheme, location = parse_address(address)
        get_backend(scheme)  # an unknown scheme: "foo://"
        if scheme not in _HOST_PORT_SCHEMES:
            return
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise InitsuiteError(
            *named, f" is not a Dask scheduler address ({first_line(exc)}): ", hint
        ) from None
    if not host.strip() or not 1 <= port <= 65535:
        what = f"port {port}, outside 1 to 65535" if host.strip() else "no host"
        raise InitsuiteError(*named, f" names {what}: ", hint)


def _task(config: dict[str, Any], key: Sequence[Any], out: str) -> int:
    """Run on a worker: one group of the sweep ``config``, stored as a chunk in ``out``."""
    from initsuite.studies.sweep.config import SweepConfig
    from initsuite.studies.sweep.runner import run_group

    arch, device, dtype, width, seed = key
    return run_group(SweepConfig.from_dict(config), (arch, device, dtype, int(width), int(seed)),
                     out)  # fmt: skip


class DaskExecutor:
    """Submit a sweep's groups to a Dask distributed cluster.

    Args:
        scheduler: the scheduler's address (``tcp://host:8786``), as any Dask deployment
            gives it (``dask scheduler``, dask-jobqueue's ``SLURMCluster``, Kubernetes); None
            starts a ``LocalCluster`` on this machine (``workers`` processes, one thread each).
        client: an existing ``dask.distributed.Client`` to use instead.
        workers: workers of the local cluster started when ``scheduler`` is None.
        timeout: how long to try reaching ``scheduler``.

    Each worker runs the cells of a group on the device the grid names (``devices=``): for
    GPUs, start one worker per GPU with its own ``CUDA_VISIBLE_DEVICES``.
    """

    def __init__(self, scheduler: str | None = None, client: Any = None, workers: int = 2,
                 timeout: str = "20s") -> None:  # fmt: skip
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise InitsuiteError(
                "the dask executor needs dask.distributed: pip install 'initsuite[dask]'"
            ) from None
        self._cluster = None
        if client is not None:
            self.client = client
        elif scheduler is not None:
            _check_address(scheduler)
            try:
                self.client = Client(scheduler, timeout=timeout)
            except OSError as exc:
                raise InitsuiteError(
                    f"cannot reach the Dask scheduler at {scheduler!r}: {exc}"
                ) from None
            except (ValueError, TypeError) as exc:  # e.g. tls:// without its TLS settings
                raise InitsuiteError(
                    f"Dask cannot connect to the scheduler at {scheduler!r}: {first_line(exc)}"
                ) from None
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)  # fmt: skip
            self.client = Client(self._cluster)

    def map_groups(self, config: Any, keys: Sequence[Any], out: str) -> Iterator[int]:
        """Run ``keys``, groups of the sweep ``config`` (a
        :class:`~initsuite.studies.sweep.config.SweepConfig`); yield each group's cell count as
        it finishes."""
        from dask.distributed import as_completed

        plain = config.to_dict()
        futures = [self.client.submit(_task, plain, list(k), out, pure=False) for k in keys]
        for future in as_completed(futures):
            yield int(future.result())

    def map_calls(self, fn: Callable[[Any, list[Any]], Any], config: Any,
                  keys: Sequence[Sequence[Any]]) -> list[Any]:  # fmt: skip
        """``fn(config, key)`` for each of ``keys`` on the cluster, one task each; the results
        in the order of ``keys``. ``fn`` is a module-level function the workers import and
        ``config`` plain data (a study's ``to_dict()``); an error in a task is raised here."""
        futures = [self.client.submit(fn, config, list(k), pure=False) for k in keys]
        return list(self.client.gather(futures))

    def close(self) -> None:
        """Close the client (and the local cluster this executor started)."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
