"""bench/latency-proxy.py: a TCP proxy in front of the local AWS that holds each
chunk from client to server for DELAY seconds, so that every request costs what
a round trip to a real region costs. Locally a request answers in a few
milliseconds and the deployer's serial round trips hide in its own CPU time;
behind this proxy they show, as they would against AWS.

Usage: python3 bench/latency-proxy.py LISTEN_PORT TARGET_PORT DELAY_SECONDS
then point a copy of deploy.toml's local stage at it, e.g.

    python3 bench/latency-proxy.py 5099 5000 0.05 &
    sed 's|127.0.0.1:5000"|127.0.0.1:5099"|' deploy.toml > /tmp/deploy-rtt.toml
    deployer --config /tmp/deploy-rtt.toml status --stage local
"""
import asyncio, sys
LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
async def pipe(r, w, delay):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass
async def handle(cr, cw):
    sr, sw = await asyncio.open_connection("127.0.0.1", TARGET)
    await asyncio.gather(pipe(cr, sw, DELAY), pipe(sr, cw, 0))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()
asyncio.run(main())
