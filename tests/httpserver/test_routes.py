"""The shared HTTP server: routing, JSON, streaming, keep-alive, handler errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import trio
import trio.lowlevel

from vk_trio.httpserver import Request, Response, Router, serve


def make_router() -> Router:
    router = Router()

    @router.route("GET", "/items/{name}")
    async def get_item(request: Request) -> Response:
        return Response.json({"name": request.params["name"], "q": request.arg("q")})

    @router.route("POST", "/echo")
    async def echo(request: Request) -> Response:
        return Response.json({"got": request.json()}, status=201)

    @router.route("GET", "/stream")
    async def stream(_request: Request) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"line {i}\n".encode()
                await trio.lowlevel.checkpoint()

        return Response(stream=lines(), headers={"content-type": "text/plain"})

    @router.route("GET", "/boom")
    async def boom(_request: Request) -> Response:
        raise RuntimeError("handler bug")

    return router


async def test_routes_params_query_and_json_bodies(nursery: trio.Nursery) -> None:
    port = await nursery.start(serve, make_router())
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        got = await client.get("/items/a%20b", params={"q": "x"})
        assert got.json() == {"name": "a b", "q": "x"}
        posted = await client.post("/echo", json={"k": [1, 2]})
        assert posted.status_code == 201
        assert posted.json() == {"got": {"k": [1, 2]}}
        assert (await client.get("/nope")).status_code == 404
        assert (await client.delete("/echo")).status_code == 405
    nursery.cancel_scope.cancel()


async def test_streams_chunks_and_survives_handler_errors(nursery: trio.Nursery) -> None:
    port = await nursery.start(serve, make_router())
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        async with client.stream("GET", "/stream") as response:
            lines = [line async for line in response.aiter_lines()]
        assert lines == ["line 0", "line 1", "line 2"]
        assert (await client.get("/boom")).status_code == 500
        # the same keep-alive client keeps working after a handler error
        assert (await client.get("/items/z")).json()["name"] == "z"
    nursery.cancel_scope.cancel()
