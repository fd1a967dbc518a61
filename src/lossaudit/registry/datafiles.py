"""Where a version's eval data file is: a path (or ``file:`` URI) read where it is, or an
artifact URI (``runs:/``, ``mlflow-artifacts:/``, ``s3://``, ...) downloaded -- by the driver for
the job, and again by a Spark executor that cannot see the driver's download.

Imports nothing of lossaudit but its errors, so that both :mod:`~lossaudit.registry.evaldata`
(the driver) and :mod:`~lossaudit.registry.workers` (the audits) use it.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

from lossaudit.errors import BadInputError


def is_artifact_uri(location: str) -> bool:
    """Whether ``location`` is a URI to download (``runs:/``, ``mlflow-artifacts:/``, ``s3://``,
    ...) rather than a path or a ``file:`` URI (a one-letter "scheme" is a Windows drive letter)."""
    text = location.strip()
    scheme = urllib.parse.urlparse(text).scheme
    return len(scheme) > 1 and scheme != "file" and ":/" in text


def local_path(location: str) -> str:
    """The file a path or a ``file:`` URI names, absolute against this process's folder."""
    text = location.strip()
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    return str(Path(text).expanduser().resolve())


def download_eval_data(uri: str, folder: Path, tracking_uri: str) -> str:
    """Download the eval data artifact ``uri`` into ``folder``; the local file.

    The driver calls it for a job's data (:class:`~lossaudit.registry.evaldata.DataResolver`); a
    Spark executor calls it too, for data the driver downloaded into a folder the executor cannot
    see (:func:`lossaudit.registry.workers.eval_data_file`).

    Raises
    ------
    BadInputError
        The artifact cannot be downloaded (one line).
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        return str(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(folder), tracking_uri=tracking_uri, registry_uri=tracking_uri
            )
        )
    except (MlflowException, OSError, ValueError) as exc:
        raise BadInputError(f"cannot download eval data {uri}: {_line(exc)}") from None


def _line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
