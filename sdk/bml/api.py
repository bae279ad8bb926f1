"""A small client of the appliance's REST API (token auth)."""

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
