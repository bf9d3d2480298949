"""DDS-Security for robomem: an SROS2-style keystore (made with the ``openssl`` CLI, no sros2 needed) and
the check that the Fast DDS in use can enforce it.

The keystore follows the layout rcl reads when ``ROS_SECURITY_ENABLE=true``: ``<keystore>/enclaves/<enclave>/``
holds ``identity_ca.cert.pem``, ``cert.pem``, ``key.pem``, ``permissions_ca.cert.pem``, ``governance.p7s`` and
``permissions.p7s`` (S/MIME signed by the keystore's CA). One enclave per node: ``/robomem/memory_node``,
``/robomem/perception``, ``/robomem/planner``; each grant allows exactly that node's topics and services.

Fast DDS only enforces this when it was built with ``-DSECURITY=ON``. The PyPI Kilted wheels are not: there
rmw_fastrtps refuses to create a node that finds its enclave ("This Fast DDS version doesn't have the security
libraries"), under Enforce and Permissive alike, and Permissive without an enclave runs unsecured.
:func:`require_security_support` says so before any node starts. See docs/security.md.

Usage: ``python -m robomem.ros.security KEYSTORE`` (creates it), ``python -m robomem.ros.security --check``.
"""

from __future__ import annotations

import argparse
import mmap
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

#: Strings compiled into libfastdds only when it was built with the security plugins.
SECURITY_PLUGIN_NAMES = (b"builtin.PKI-DH", b"builtin.AES-GCM-GMAC", b"builtin.Access-Permissions")
ENCLAVE_FILES = ("identity_ca.cert.pem", "cert.pem", "key.pem", "permissions_ca.cert.pem", "governance.p7s",
                 "permissions.p7s")
#: robomem's node name -> its enclave.
ENCLAVES = {"memory": "/robomem/memory_node", "perception": "/robomem/perception", "planner": "/robomem/planner"}
MEMORY_SERVICES = ("where_is", "where_was", "last_seen", "contents", "get_object_state", "count", "what_changed",
                   "within_radius", "within_box", "relations", "semantic_search", "planner_context",
                   "get_scene_graph", "record_episode", "similar_episodes", "get_stats", "likely_places")
#: Every node's own infrastructure topics (rcl's logging and parameter events; /clock under use_sim_time).
COMMON_PUBLISH = ("rt/rosout", "rt/parameter_events")
COMMON_SUBSCRIBE = ("rt/clock",)
#: ROS 2 over DDS: topic ``x`` is ``rt/x``; service ``s`` is ``rq/sRequest`` and ``rr/sReply``.


def _anywhere(kind: str, name: str, suffix: str = "") -> tuple[str, str]:
    """The DDS topic of a relative ROS name in the root namespace and in any other (robomem ros --namespace)."""
    return f"{kind}/{name}{suffix}", f"{kind}/*/{name}{suffix}"


def _topics(*names: str) -> tuple[str, ...]:
    return tuple(t for name in names for t in _anywhere("rt", name))


def _memory_services(kind: str, suffix: str) -> tuple[str, ...]:
    return tuple(t for service in MEMORY_SERVICES for t in _anywhere(kind, f"memory/{service}", suffix))


POLICY: dict[str, dict[str, tuple[str, ...]]] = {
    "memory": {
        "subscribe": (*_topics("observations", "skill_events"), *_memory_services("rq", "Request")),
        "publish": (*_topics("events", "scene_graph", "scene_graph_markers"), "rt/diagnostics",
                    *_memory_services("rr", "Reply")),
    },
    "perception": {
        "subscribe": (*_topics("depth/image", "depth/camera_info", "camera_pose", "instance_mask", "detections"),
                      "rt/tf", "rt/tf_static"),
        "publish": (*_topics("observations"), "rt/diagnostics"),
    },
    "planner": {
        "subscribe": (*_topics("events", "scene_graph"), *_memory_services("rr", "Reply")),
        "publish": ("rt/diagnostics", *_memory_services("rq", "Request")),
    },
}


class SecurityUnavailable(RuntimeError):
    """DDS security was asked for, but the Fast DDS in use cannot enforce it."""


def fastdds_library(search: Iterable[Path] | None = None) -> Path | None:
    """The libfastdds.so rmw_fastrtps loads: the first one in LD_LIBRARY_PATH, AMENT_PREFIX_PATH/lib,
    then this interpreter's prefix/lib (where the PyPI ROS wheels put it)."""
    if search is None:
        folders = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
        folders += [Path(p) / "lib" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p]
        search = [*folders, Path(sys.prefix) / "lib"]
    for folder in search:
        for candidate in sorted(Path(folder).glob("libfastdds.so*")):
            if candidate.is_file():
                return candidate.resolve()
    return None


def fastdds_has_security(library: Path | None = None) -> bool:
    """Whether ``library`` (default :func:`fastdds_library`) carries the DDS-Security builtin plugins."""
    library = library or fastdds_library()
    if library is None:
        return False
    with open(library, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return all(data.find(name) >= 0 for name in SECURITY_PLUGIN_NAMES)


def security_requested(environ: dict[str, str] | None = None) -> bool:
    return (environ if environ is not None else os.environ).get("ROS_SECURITY_ENABLE", "").lower() == "true"


def require_security_support(library: Path | None = None) -> None:
    """Raise :class:`SecurityUnavailable` unless Fast DDS can enforce DDS-Security (fail closed)."""
    library = library or fastdds_library()
    if not fastdds_has_security(library):
        raise SecurityUnavailable(
            f"DDS security was requested, but Fast DDS ({library or 'libfastdds.so not found'}) was built without "
            "the security plugins (builtin.PKI-DH, builtin.AES-GCM-GMAC, builtin.Access-Permissions): it would run "
            "unauthenticated and unencrypted. Use a ROS 2 install whose Fast DDS has -DSECURITY=ON (the ROS apt "
            "packages do; the PyPI wheels do not). See docs/security.md.")


def node_environment(keystore: Path, node: str, strategy: str = "Enforce") -> dict[str, str]:
    """The standard ROS 2 security variables for one robomem node."""
    return {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": strategy,
            "ROS_SECURITY_KEYSTORE": str(Path(keystore).resolve()), "ROS_SECURITY_ENCLAVE_OVERRIDE": ENCLAVES[node]}


# --- keystore -------------------------------------------------------------------------------------------------

def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def governance_xml(domain: int | None = None) -> str:
    """Every participant must authenticate; discovery, liveliness and data encrypted; access control on."""
    domains = f"<id>{domain}</id>" if domain is not None else "<id_range><min>0</min><max>230</max></id_range>"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd">
  <domain_access_rules>
    <domain_rule>
      <domains>{domains}</domains>
      <allow_unauthenticated_participants>false</allow_unauthenticated_participants>
      <enable_join_access_control>true</enable_join_access_control>
      <discovery_protection_kind>ENCRYPT</discovery_protection_kind>
      <liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>
      <rtps_protection_kind>SIGN</rtps_protection_kind>
      <topic_access_rules>
        <topic_rule>
          <topic_expression>*</topic_expression>
          <enable_discovery_protection>true</enable_discovery_protection>
          <enable_liveliness_protection>true</enable_liveliness_protection>
          <enable_read_access_control>true</enable_read_access_control>
          <enable_write_access_control>true</enable_write_access_control>
          <metadata_protection_kind>ENCRYPT</metadata_protection_kind>
          <data_protection_kind>ENCRYPT</data_protection_kind>
        </topic_rule>
      </topic_access_rules>
    </domain_rule>
  </domain_access_rules>
</dds>
"""


def permissions_xml(node: str, subject: str, valid_days: int, domain: int | None = None) -> str:
    """One grant for ``subject``: ``POLICY[node]`` (plus rosout/parameter events) allowed, all else denied."""
    now = datetime.now(UTC)
    domains = f"<id>{domain}</id>" if domain is not None else "<id_range><min>0</min><max>230</max></id_range>"

    def topics(names: Iterable[str]) -> str:
        return "".join(f"<topic>{escape(name)}</topic>" for name in names)

    rules = POLICY[node]
    # the node serves its own services (rcl's parameter services among them): no other grant may call
    # those unless it lists them in its publish rules, so nobody sets parameters over DDS
    own_requests, own_replies = _anywhere("rq", f"{node}/*", "Request"), _anywhere("rr", f"{node}/*", "Reply")
    not_before, not_after = _stamp(now), _stamp(now + timedelta(days=valid_days))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd">
  <permissions>
    <grant name="{escape(ENCLAVES[node])}">
      <subject_name>{escape(subject)}</subject_name>
      <validity><not_before>{not_before}</not_before><not_after>{not_after}</not_after></validity>
      <allow_rule>
        <domains>{domains}</domains>
        <publish><topics>{topics((*rules["publish"], *COMMON_PUBLISH, *own_replies))}</topics></publish>
        <subscribe><topics>{topics((*rules["subscribe"], *COMMON_SUBSCRIBE, *own_requests))}</topics></subscribe>
      </allow_rule>
      <default>DENY</default>
    </grant>
  </permissions>
</dds>
"""


def _sign(document: Path, signed: Path, ca_cert: Path, ca_key: Path) -> None:
    _openssl("smime", "-sign", "-text", "-in", str(document), "-out", str(signed), "-signer", str(ca_cert),
             "-inkey", str(ca_key))


def create_keystore(keystore: Path, nodes: Iterable[str] = tuple(ENCLAVES), valid_days: int = 365,
                    domain: int | None = None) -> Path:
    """Create (or add enclaves to) ``keystore``: one CA (EC P-256) that is both identity and permissions CA,
    a signed governance, and per node a key, a certificate ``CN=<enclave>`` and signed permissions."""
    keystore = Path(keystore)
    public, private, enclaves = keystore / "public", keystore / "private", keystore / "enclaves"
    for folder in (public, private, enclaves):
        folder.mkdir(parents=True, exist_ok=True)
    private.chmod(0o700)
    ca_cert, ca_key = public / "ca.cert.pem", private / "ca.key.pem"
    if not ca_cert.exists():
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(ca_key), "-out", str(ca_cert), "-days", str(valid_days),
                 "-subj", "/CN=robomem keystore CA")
        ca_key.chmod(0o600)
    governance = enclaves / "governance.xml"
    governance.write_text(governance_xml(domain))
    _sign(governance, enclaves / "governance.p7s", ca_cert, ca_key)
    for node in nodes:
        folder = enclaves / ENCLAVES[node].lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        key, cert = folder / "key.pem", folder / "cert.pem"
        subject = f"CN={ENCLAVES[node]}"
        with tempfile.TemporaryDirectory() as scratch:
            request = Path(scratch) / "request.csr"
            _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                     str(key), "-out", str(request), "-subj", "/CN=" + ENCLAVES[node].replace("/", "\\/"))
            _openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                     "-CAcreateserial", "-CAserial", str(Path(scratch) / "ca.srl"), "-out", str(cert),
                     "-days", str(valid_days))
        key.chmod(0o600)
        for name in ("identity_ca.cert.pem", "permissions_ca.cert.pem"):
            (folder / name).write_bytes(ca_cert.read_bytes())
        (folder / "governance.p7s").write_bytes((enclaves / "governance.p7s").read_bytes())
        permissions = folder / "permissions.xml"
        permissions.write_text(permissions_xml(node, subject, valid_days, domain))
        _sign(permissions, folder / "permissions.p7s", ca_cert, ca_key)
    return keystore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robomem.ros.security", description=__doc__.split("\n\n")[0])
    parser.add_argument("keystore", nargs="?", type=Path, help="keystore folder to create or extend")
    parser.add_argument("--nodes", default=",".join(ENCLAVES), help="enclaves to make (default: all)")
    parser.add_argument("--days", type=int, default=365, help="validity of the certificates and permissions")
    parser.add_argument("--domain", type=int, help="restrict governance and permissions to one ROS domain")
    parser.add_argument("--check", action="store_true", help="only report whether Fast DDS can enforce security")
    args = parser.parse_args(argv)
    library = fastdds_library()
    supported = fastdds_has_security(library)
    print(f"Fast DDS {library}: security plugins {'present' if supported else 'ABSENT (cannot enforce)'}")
    if args.check or args.keystore is None:
        return 0 if supported else 1
    create_keystore(args.keystore, [n for n in args.nodes.split(",") if n], args.days, args.domain)
    print(f"keystore {args.keystore}: enclaves {', '.join(ENCLAVES[n] for n in args.nodes.split(',') if n)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
