"""Record and replay over real DDS, on frames of the simulator's camera: the memory node runs live (own
process) with the recorder (own process) beside it; the bag, replayed into a fresh memory file, gives
the answers the live node gave. The bag opens with rosbags. Bad bags (truncated, corrupt, foreign
topics or types, another definition, undecodable messages) are refused with the problem named, and
nothing of them reaches the memory file."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import require_ros

require_ros()
pb = pytest.importorskip("pybullet")

from camera_walk import MUG_ON_BOX, camera_batches, camera_frames  # noqa: E402
from ros_helpers import NodeProcess, call, handshake, wait_for  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.cli import main as robomem_main  # noqa: E402
from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.record.bag import BagError, BagWriter  # noqa: E402
from robomem.record.replay import replay  # noqa: E402
from robomem.record.schemas import OBSERVATION_TYPE, typestore  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.qos import keep_last, observation_qos  # noqa: E402

pytestmark = pytest.mark.ros

MEMORY, RECORDER = "memory", "recorder"


def depth_image(r, t: float) -> Image:
    message = Image(height=r.depth_m.shape[0], width=r.depth_m.shape[1], encoding="32FC1", is_bigendian=0,
                    step=r.depth_m.shape[1] * 4, data=r.depth_m.astype(np.float32).tobytes())
    message.header.stamp, message.header.frame_id = convert.time_to_msg(t), "camera"
    return message


def counters(ros, node: str) -> dict[str, int]:
    response = call(ros, srv.GetStats, f"/{node}/get_stats", srv.GetStats.Request())
    return {c.name: c.value for c in response.counters}


def answers_of(ask_where, ask_contents, labels) -> dict[str, object]:
    """where_is of every label and contents of every receptacle, as comparable tuples."""
    out: dict[str, object] = {}
    for label in sorted(labels):
        out[f"where_is {label}"] = ask_where(label)
        out[f"contents {label}"] = ask_contents(label)
    return out


def info_key(label, center, size, status, receptacle, relation, state) -> tuple:
    return (label, tuple(np.round(center, 6)), tuple(np.round(size, 6)), status, receptacle or "",
            relation or "", tuple(sorted(state.items())))


def memory_answers(memory: Memory, labels) -> dict[str, object]:
    def where(label):
        info = memory.where_is(label)
        return None if info is None else info_key(info.label, info.center, info.size, info.status, info.receptacle,
                                                  info.relation, info.state)

    def contents(label):
        return sorted(info_key(i.label, i.center, i.size, i.status, i.receptacle, i.relation, i.state)
                      for i in memory.contents(label))

    return answers_of(where, contents, labels)


def message_key(m: rmsg.ObjectInfo) -> tuple:
    return info_key(m.label, convert.xyz(m.center), convert.xyz(m.size), m.status, m.receptacle, m.relation,
                    convert.state_from_msgs(m.state))


@pytest.fixture(scope="module")
def live(ros, tmp_path_factory):
    """The live run: memory node + recorder, the camera's batches (and depth images) published over DDS;
    the node's answers taken over its services; then both stopped (the bag closed)."""
    folder: Path = tmp_path_factory.mktemp("record")
    frames = camera_frames()
    batches = camera_batches(frames)
    bag = folder / "run"
    events: list[rmsg.MemoryEvent] = []
    ros.create_subscription(rmsg.MemoryEvent, "/events", events.append, keep_last(1000))
    observations = ros.create_publisher(rmsg.ObservationBatch, "/observations", observation_qos(100))
    depth = ros.create_publisher(Image, "/depth/image", keep_last(20))  # all 12 kept until the recorder has them
    # The recorder first: the memory node then finds its readers at start-up, and its events writer
    # matches them as it starts (a writer that meets a reader later may miss its first events).
    recorder = NodeProcess("robomem.record.recorder", {"bag_path": str(bag), "discovery_period_s": 0.2},
                           name=RECORDER, log_path=folder / "recorder.log")
    memory_node = None
    try:
        handshake(ros, srv.GetStats, f"/{RECORDER}/get_stats")
        memory_node = NodeProcess("robomem.ros.memory_node", {"db_path": str(folder / "live.sqlite")}, name=MEMORY,
                                  log_path=folder / "memory.log")
        handshake(ros, srv.GetStats, f"/{MEMORY}/get_stats")
        assert wait_for(lambda: observations.get_subscription_count() >= 2, ros, timeout=20)
        assert wait_for(lambda: counters(ros, RECORDER).get("publishers./events", 0) >= 1
                        and counters(ros, RECORDER).get("publishers./depth/image", 0) >= 1, ros, timeout=20), \
            recorder.log()
        # and the memory node's events writer has matched both readers (this test's and the recorder's):
        # a volatile writer does not send what it wrote before it met a reader
        assert wait_for(lambda: counters(ros, MEMORY).get("subscribers.events", 0) >= 2, ros, timeout=20), \
            memory_node.log()
        for sequence, ((t, r, _), batch) in enumerate(zip(frames, batches, strict=True), start=1):
            depth.publish(depth_image(r, t))
            observations.publish(convert.batch_to_msg(batch, "map", sequence))
        n = len(batches)
        assert wait_for(lambda: counters(ros, MEMORY).get("batches", 0) >= n, ros, timeout=30), memory_node.log()
        labels = {i.label for b in batches for i in b.detections}
        published = sum(v for k, v in counters(ros, MEMORY).items() if k.startswith("events."))
        assert published > 0
        assert wait_for(lambda: (c := counters(ros, RECORDER)).get("recorded./observations", 0) >= n
                        and c.get("recorded./depth/image", 0) >= n and c.get("recorded./events", 0) >= published
                        and len(events) >= published, ros, timeout=30), \
            f"recorder {counters(ros, RECORDER)}, events heard {len(events)}, published {published}"

        def where(label):
            answer = call(ros, srv.WhereIs, f"/{MEMORY}/where_is", srv.WhereIs.Request(label=label))
            return message_key(answer.object) if answer.found else None

        def contents(label):
            answer = call(ros, srv.Contents, f"/{MEMORY}/contents", srv.Contents.Request(receptacle=label))
            return sorted(message_key(m) for m in answer.objects)

        answers = answers_of(where, contents, labels)
    finally:
        recorder.stop()
        if memory_node is not None:
            memory_node.stop()
    assert recorder.process.returncode == 0, recorder.log()
    return {"folder": folder, "bag": bag, "batches": batches, "labels": labels, "answers": answers,
            "events": [(e.label, e.change) for e in events], "live_db": folder / "live.sqlite"}


@pytest.mark.slow
def test_replay_gives_the_live_answers(live, tmp_path):
    report = replay(live["bag"], tmp_path / "replayed.sqlite")
    assert report.batches == len(live["batches"]) and report.batches_rejected == 0
    assert [(label, change) for _, label, change in report.events] == live["events"]
    assert ("Mug", "moved") in live["events"]  # the run has a change to get right
    with Memory(MemoryConfig(db_path=str(tmp_path / "replayed.sqlite"))) as memory:
        replayed = memory_answers(memory, live["labels"])
    assert replayed == live["answers"]
    mug = live["answers"]["where_is Mug"]
    assert mug is not None and np.allclose(mug[1][:2], MUG_ON_BOX[:2], atol=0.05)  # the mug's new place
    assert live["answers"]["contents Box"]  # the box holds the mug: contents answers are compared too
    with Memory(MemoryConfig(db_path=str(live["live_db"]))) as memory:  # and the live node's file agrees
        assert memory_answers(memory, live["labels"]) == replayed


@pytest.mark.slow
def test_replay_paced_gives_the_same_memory(live, tmp_path):
    report = replay(live["bag"], tmp_path / "paced.sqlite", rate=50.0)
    assert report.wall_s >= report.bag_span_s / 50.0 * 0.95 > 0
    with Memory(MemoryConfig(db_path=str(tmp_path / "paced.sqlite"))) as memory:
        assert memory_answers(memory, live["labels"]) == live["answers"]


@pytest.mark.slow
def test_the_bag_opens_with_rosbags(live):
    from rosbags.highlevel import AnyReader

    with AnyReader([live["bag"]], default_typestore=typestore()) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        assert by_topic["/observations"].msgtype == OBSERVATION_TYPE
        assert by_topic["/events"].msgtype == "robomem/msg/MemoryEvent"
        assert by_topic["/depth/image"].msgtype == "sensor_msgs/msg/Image"
        assert by_topic["/observations"].msgcount == len(live["batches"])
        decoded = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages([by_topic["/observations"]])]
        images = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages([by_topic["/depth/image"]])]
    # rosbags' own CDR decoder reads what rclpy serialized: the published batches, field by field
    for message, batch in zip(decoded, live["batches"], strict=True):
        assert message.robot_id == batch.robot and message.header.frame_id == "map"
        assert message.header.stamp.sec + message.header.stamp.nanosec * 1e-9 == pytest.approx(batch.t)
        assert [o.label for o in message.observations] == [d.label for d in batch.detections]
        np.testing.assert_allclose([[o.center.x, o.center.y, o.center.z] for o in message.observations],
                                   [d.center for d in batch.detections])
    assert (images[0].width, images[0].height, images[0].encoding) == (320, 240, "32FC1")
    # the type hash in the bag is the one rosidl computed when robomem's interfaces were built
    built = Path(sys.prefix) / "share" / "robomem" / "msg" / "ObservationBatch.json"
    if built.is_file():
        hashes = {h["type_name"]: h["hash_string"] for h in json.loads(built.read_text())["type_hashes"]}
        assert by_topic["/observations"].digest == hashes[OBSERVATION_TYPE]


# ---------------------------------------------------------------------- bad bags
@pytest.fixture(scope="module")
def offline(tmp_path_factory) -> dict:
    """A bag of the camera walk's batches written without DDS (BagWriter + rclpy's serializer)."""
    from rclpy.serialization import serialize_message

    batches = camera_batches()
    bag = tmp_path_factory.mktemp("offline") / "walk"
    with BagWriter(bag) as writer:
        writer.add_topic("/observations", OBSERVATION_TYPE)
        for i, batch in enumerate(batches):
            writer.write("/observations", serialize_message(convert.batch_to_msg(batch, "map", i + 1)),
                         int(batch.t * 1e9))
    return {"bag": bag, "batches": batches}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_leftovers(folder: Path, keep: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == keep  # no temporary memory left behind


def _copy_bag(source: dict, tmp_path: Path, name: str) -> tuple[Path, Path]:
    bag = tmp_path / name
    shutil.copytree(source["bag"], bag)
    return bag, next(bag.glob("*.mcap"))


def test_truncated_bag_is_refused(offline, tmp_path, capsys):
    bag, file = _copy_bag(offline, tmp_path, "cut")
    data = file.read_bytes()
    file.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BagError, match="truncated"):
        replay(bag, out / "m.sqlite")
    _no_leftovers(out, set())
    assert robomem_main(["replay", str(bag), "--db", str(out / "m.sqlite")]) == 2
    assert "truncated" in capsys.readouterr().err
    _no_leftovers(out, set())


def test_corrupt_bag_is_refused_and_an_existing_memory_is_untouched(offline, tmp_path):
    bag, file = _copy_bag(offline, tmp_path, "corrupt")
    from mcap.reader import SeekingReader

    with open(file, "rb") as stream:
        chunk = SeekingReader(stream).get_summary().chunk_indexes[0]
    data = bytearray(file.read_bytes())
    middle = chunk.chunk_start_offset + chunk.chunk_length // 2
    data[middle: middle + 64] = bytes(64)  # zeros in the middle of the first chunk (its CRC no longer matches)
    file.write_bytes(bytes(data))
    existing = tmp_path / "home.sqlite"
    assert replay(offline["bag"], existing).batches == len(offline["batches"])  # a memory already there
    before = _sha(existing)
    with pytest.raises(BagError, match="corrupt"):
        replay(bag, existing, append=True)
    assert _sha(existing) == before
    _no_leftovers(tmp_path, {"corrupt", "home.sqlite"})


def _foreign_bag(path: Path, topics: dict[str, str]) -> Path:
    with BagWriter(path) as writer:
        store = typestore()
        for topic, msgtype in topics.items():
            writer.add_topic(topic, msgtype)
            if msgtype == "std_msgs/msg/String":
                message = store.types[msgtype](data="hello")
                writer.write(topic, bytes(store.serialize_cdr(message, msgtype)), 1_000)
    return path


def test_bag_without_observations_names_its_topics(tmp_path):
    bag = _foreign_bag(tmp_path / "foreign", {"/camera/image": "sensor_msgs/msg/Image",
                                             "/chatter": "std_msgs/msg/String"})
    with pytest.raises(BagError, match=r"no topic /observations; its topics: /camera/image \(sensor_msgs/msg/Image\)"):
        replay(bag, tmp_path / "m.sqlite")
    assert not (tmp_path / "m.sqlite").exists()


def test_observations_of_another_type_are_refused(tmp_path):
    bag = _foreign_bag(tmp_path / "wrong", {"/observations": "std_msgs/msg/String"})
    with pytest.raises(BagError, match="carries std_msgs/msg/String, not robomem/msg/ObservationBatch"):
        replay(bag, tmp_path / "m.sqlite")
    assert not (tmp_path / "m.sqlite").exists()


def test_another_definition_of_the_batch_is_refused(tmp_path):
    from mcap.writer import Writer

    folder = tmp_path / "old"
    folder.mkdir()
    with open(folder / "old_0.mcap", "wb") as stream:  # an older robomem's ObservationBatch: other fields
        writer = Writer(stream)
        writer.start(profile="ros2", library="test")
        schema = writer.register_schema(OBSERVATION_TYPE, "ros2msg", b"string robot_id\nuint32 count\n")
        channel = writer.register_channel("/observations", "cdr", schema)
        writer.add_message(channel, 1, b"\x00\x01\x00\x00" + bytes(12), 1)
        writer.finish()
    with pytest.raises(BagError, match="another definition of robomem/msg/ObservationBatch"):
        replay(folder, tmp_path / "m.sqlite")


def test_a_message_that_does_not_decode_stops_the_replay_with_nothing_kept(offline, tmp_path):
    bag = tmp_path / "garbled"
    with BagWriter(bag) as writer:
        writer.add_topic("/observations", OBSERVATION_TYPE)
        for i, batch in enumerate(offline["batches"]):
            from rclpy.serialization import serialize_message

            writer.write("/observations", serialize_message(convert.batch_to_msg(batch, "map", i + 1)), 1_000 + i)
        writer.write("/observations", b"\x00\x01\x00\x00\xff\xff\xff\x7f", 10_000)  # a string of 2 GB
    with pytest.raises(BagError, match="message 12 on /observations does not deserialize"):
        replay(bag, tmp_path / "m.sqlite")
    _no_leftovers(tmp_path, {"garbled"})


def test_a_batch_memory_rejects_is_counted_as_the_node_would(tmp_path):
    from rclpy.serialization import serialize_message

    bag = tmp_path / "odd"
    good = rmsg.ObservationBatch(robot_id="r1", observations=[rmsg.ObjectObservation(
        label="Mug", confidence=0.9, center=convert.point_to_msg((1, 0, 0.8)), size=convert.vector_to_msg((.1,) * 3))])
    good.header.frame_id, good.header.stamp = "map", convert.time_to_msg(1.0)
    elsewhere = rmsg.ObservationBatch(robot_id="r1")
    elsewhere.header.frame_id = "odom"  # the node rejects a batch in another frame
    with BagWriter(bag) as writer:
        writer.add_topic("/observations", OBSERVATION_TYPE)
        writer.write("/observations", serialize_message(good), 1)
        writer.write("/observations", serialize_message(elsewhere), 2)
    report = replay(bag, tmp_path / "m.sqlite")
    assert (report.batches, report.batches_rejected) == (1, 1)
    assert report.counters.get("rejected.unknown_frame") == 1

