"""``robomem foxglove``: a live Foxglove WebSocket server (own process, bound to 127.0.0.1) serving a
memory built from the simulator's camera. A WebSocket client speaking Foxglove's protocol subscribes,
decodes the SceneUpdate messages with the schema the server advertises (protobuf), and finds every
believed object with its holder, the relations, the room, and, after the memory file changes, the
change."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("foxglove")
websockets_sync = pytest.importorskip("websockets.sync.client")
descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")

from camera_walk import ROOM, camera_batches  # noqa: E402
from google.protobuf import descriptor_pool, message_factory  # noqa: E402

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.types import ObservationBatch, make_detection  # noqa: E402

TOPIC = "/robomem/scene"


@pytest.fixture(scope="module")
def memory_file(tmp_path_factory) -> dict:
    folder: Path = tmp_path_factory.mktemp("foxglove")
    db = folder / "home.sqlite"
    config = folder / "memory.yaml"
    config.write_text(f"memory:\n  rooms:\n    - {{name: {ROOM['name']}, min: {ROOM['min']}, max: {ROOM['max']}}}\n")
    with Memory(MemoryConfig(db_path=str(db), rooms=[ROOM])) as memory:
        batches = camera_batches()
        for batch in batches:
            memory.ingest(batch)
        infos = {t.track_id: memory.belief.info(t, None) for t in memory.believed_tracks()}
    return {"db": db, "config": config, "infos": infos, "last_t": batches[-1].t}


def _listening_address(port: int) -> str:
    """The local address of the TCP socket listening on ``port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            return ".".join(str(b) for b in reversed(bytes.fromhex(address)))
    return ""


class FoxgloveClient:
    """Just enough of the Foxglove WebSocket protocol: advertise, subscribe, binary message data."""

    def __init__(self, url: str) -> None:
        self._connection = websockets_sync.connect(url, subprotocols=["foxglove.sdk.v1"], open_timeout=20)
        self.ws = self._connection.__enter__()
        self.channels: dict[int, dict] = {}

    def subscribe(self, topic: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while not any(c["topic"] == topic for c in self.channels.values()):
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("op") == "advertise":
                self.channels.update({c["id"]: c for c in message["channels"]})
        channel = next(c for c in self.channels.values() if c["topic"] == topic)
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": channel["id"]}]}))
        return channel

    def next_payload(self, timeout: float = 20.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(frame, bytes) and frame[0] == 0x01:  # message data: op, subscription, time, payload
                subscription, _log_time = struct.unpack_from("<IQ", frame, 1)
                assert subscription == 7
                return frame[13:]

    def close(self) -> None:
        self._connection.__exit__(None, None, None)


def _decoder(channel: dict):
    """The message class of the advertised schema (a protobuf FileDescriptorSet, base64)."""
    assert channel["encoding"] == "protobuf" and channel["schemaName"] == "foxglove.SceneUpdate"
    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("foxglove.SceneUpdate"))


@pytest.fixture(scope="module")
def server(memory_file, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "w") as out:
        command = [sys.executable, "-m", "robomem.cli", "foxglove", "--db", str(memory_file["db"]),
                   "--config", str(memory_file["config"]), "--port", "0", "--period", "0.2"]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "ws://" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        port = int(log.read_text().split("ws://127.0.0.1:")[1].split()[0])
        yield {"port": port, "process": process, "log": log}
    finally:
        process.terminate()
        process.wait(20)


def test_the_server_listens_on_this_machine_only(server):
    assert _listening_address(server["port"]) == "127.0.0.1"


def test_a_client_gets_objects_relations_rooms_and_states(server, memory_file):
    client = FoxgloveClient(f"ws://127.0.0.1:{server['port']}")
    try:
        scene_update = _decoder(client.subscribe(TOPIC))
        update = scene_update.FromString(client.next_payload())
    finally:
        client.close()
    entities = {e.id: e for e in update.entities}
    infos = memory_file["infos"]
    assert {i for i in entities if i.startswith("object/")} == {f"object/{t}" for t in infos}
    for track_id, info in infos.items():
        entity = entities[f"object/{track_id}"]
        meta = {kv.key: kv.value for kv in entity.metadata}
        assert meta["label"] == info.label and meta["room"] == ROOM["name"] and entity.frame_id == "map"
        assert meta["holder"] == (f"{info.relation or 'on'} {info.receptacle}" if info.receptacle else "")
        states = {k[6:]: v for k, v in meta.items() if k.startswith("state.")}
        assert states == {k: str(v) for k, v in info.state.items()}
        cube = entity.cubes[0]
        np.testing.assert_allclose([cube.pose.position.x, cube.pose.position.y, cube.pose.position.z], info.center)
        np.testing.assert_allclose([cube.size.x, cube.size.y, cube.size.z], info.size)
        assert info.label in entity.texts[0].text
    relations = {kv.key: kv.value for kv in entities["relations"].metadata}
    held = {t: i for t, i in infos.items() if i.receptacle_id is not None}
    assert held and relations == {str(t): f"{i.relation} {i.receptacle_id}" for t, i in held.items()}
    assert len(entities["relations"].lines[0].points) == 2 * len(held)
    room = entities[f"room/{ROOM['name']}"]
    assert (room.cubes[0].size.x, room.cubes[0].size.y) == pytest.approx(
        (ROOM["max"][0] - ROOM["min"][0], ROOM["max"][1] - ROOM["min"][1]))


def test_a_change_of_the_memory_file_reaches_the_client(server, memory_file):
    client = FoxgloveClient(f"ws://127.0.0.1:{server['port']}")
    try:
        scene_update = _decoder(client.subscribe(TOPIC))
        first = scene_update.FromString(client.next_payload())
        assert not any(kv.value == "Apple" for e in first.entities for kv in e.metadata)
        with Memory(MemoryConfig(db_path=str(memory_file["db"]), rooms=[ROOM])) as memory:
            for dt in (1.0, 2.0):  # an apple put on the table, seen twice
                memory.ingest(ObservationBatch(memory_file["last_t"] + dt, "r1", [
                    make_detection("Apple", (2.1, -0.2, 0.79), (0.08, 0.08, 0.08), 0.95)]))
        deadline = time.monotonic() + 30
        while True:
            update = scene_update.FromString(client.next_payload())
            apples = [e for e in update.entities if {kv.key: kv.value for kv in e.metadata}.get("label") == "Apple"]
            if apples or time.monotonic() > deadline:
                break
    finally:
        client.close()
    assert len(apples) == 1
    assert {kv.key: kv.value for kv in apples[0].metadata}["holder"] == "on DiningTable"
