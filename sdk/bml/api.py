"""A small client of the appliance's REST API (token auth)."""

# Annotations stay strings: the class's own `list` method would shadow the builtin in them.
from __future__ import annotations

import os
from pathlib import Path

import httpx


class ApiError(Exception):
    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        try:
            self.detail = response.json()
        except ValueError:
            self.detail = response.text
        super().__init__(f"{response.status_code}: {self.detail}")


class Client:
    """`Client(url, token)`; defaults from BML_API_URL and BML_API_TOKEN."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60):
        url = url or os.environ.get("BML_API_URL", "http://127.0.0.1:8000")
        token = token or os.environ.get("BML_API_TOKEN", "")
        headers = {"Authorization": f"Token {token}"} if token else {}
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout
        )

    def _json(self, response: httpx.Response):
        if response.is_error:
            raise ApiError(response)
        return response.json() if response.content else None

    def _all(self, path: str, **params) -> list:
        page = self._json(self.http.get(path, params=params))
        items = page["results"]
        while page.get("next"):
            page = self._json(self.http.get(page["next"]))
            items += page["results"]
        return items

    def projects(self) -> list[dict]:
        return self._all("/projects/")

    def create_project(self, name: str) -> dict:
        return self._json(self.http.post("/projects/", json={"name": name}))

    def buckets(self, project: int | None = None) -> list[dict]:
        return self._all("/buckets/", **({"project": project} if project else {}))

    def create_bucket(self, project: int, name: str) -> dict:
        return self._json(self.http.post("/buckets/", json={"project": project, "name": name}))

    def list(self, bucket: str, prefix: str = "") -> list[dict]:
        return self._json(self.http.get(f"/buckets/{bucket}/objects/", params={"prefix": prefix}))

    def upload(self, local: str | os.PathLike, bucket: str, key: str) -> dict:
        path = Path(local)
        with path.open("rb") as fh:
            return self._json(
                self.http.put(
                    f"/buckets/{bucket}/objects/{key}",
                    content=fh,
                    headers={"Content-Length": str(path.stat().st_size)},
                )
            )

    def download(self, bucket: str, key: str, local: str | os.PathLike) -> Path:
        path = Path(local)
        with self.http.stream("GET", f"/buckets/{bucket}/objects/{key}") as response:
            if response.is_error:
                response.read()
                raise ApiError(response)
            with path.open("wb") as fh:
                for chunk in response.iter_bytes(1024 * 1024):
                    fh.write(chunk)
        return path

    def download_folder(self, bucket: str, prefix: str, local_dir: str | os.PathLike) -> list[Path]:
        """Every object under `prefix` (a folder, e.g. 'data/'), kept in its sub-folders."""
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        local_dir = Path(local_dir)
        written, folders = [], [prefix]
        while folders:
            for entry in self.list(bucket, folders.pop()):
                if entry["is_folder"]:
                    folders.append(entry["key"])
                    continue
                target = local_dir / entry["key"][len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(self.download(bucket, entry["key"], target))
        return written

    def upload_folder(self, local_dir: str | os.PathLike, bucket: str, prefix: str) -> list[dict]:
        """Every file under `local_dir`, to `prefix` + its path relative to `local_dir`."""
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        root = Path(local_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return [self.upload(p, bucket, prefix + p.relative_to(root).as_posix()) for p in files]

    def datasets(self, public: bool = False, project: int | None = None) -> list[dict]:
        """Table data sets of your projects (or one project), or the public ones."""
        if public:
            return self._all("/datasets/", public=1)
        return self._all("/datasets/", **({"project": project} if project else {}))

    def dataset_rows(
        self, pk: int, offset: int = 0, limit: int = 100, version: int | None = None
    ) -> dict:
        """A page of a data set's rows: {columns: [{name, type}], rows, total, offset, ...}
        (at most 200 rows a page)."""
        params = {"offset": offset, "limit": limit}
        if version is not None:
            params["version"] = version
        return self._json(self.http.get(f"/datasets/{pk}/rows/", params=params))
