"""The LTE wire format as experiments/hostile speaks it: frames (Sources/LTENet/FrameHeader.swift,
MessageCodec.swift), the bodies of the messages it forges (MessageBodies.swift), their signatures
(MessageSignature.swift), and just enough decoding of the server's answers."""
import hashlib, hmac, json, os, re, secrets, struct, time

# FrameHeader.currentVersion, read from the source so this client never speaks an old version (it
# once sent 3 for two versions and failed at its first hello).
_HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "LTENet", "FrameHeader.swift")
WIRE_VERSION = int(re.search(r"currentVersion: UInt16 = (\d+)", open(_HEADER).read()).group(1))
HELLO, WELCOME, PUSH, ROUND_RESULT, STATUS_REQUEST, STATUS, ERROR, LEAVE = 1, 2, 3, 4, 5, 6, 7, 8
CODES = {1: "malformed", 2: "unauthorized", 3: "stale round", 4: "unknown head", 5: "non-finite", 6: "too large",
         8: "wrong shape", 11: "run finished", 12: "out of bounds", 13: "no free head"}


# ---- frames (Sources/LTENet: FrameHeader, MessageBodies) ----

def frame(kind, body, key):
    header = b"LTE1" + struct.pack("<HHIQ", WIRE_VERSION, kind, 1, len(body))
    return header + body + hmac.new(key, header + body, hashlib.sha256).digest()


def s_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def s_ints(xs):
    return struct.pack("<I", len(xs)) + b"".join(struct.pack("<I", x) for x in xs)


def s_floats(xs):
    return struct.pack("<I", len(xs)) + struct.pack(f"<{len(xs)}f", *xs)


def s_tensor(name, values):
    """A rank-1 float32 tensor: name, rank, dims, encoding 0 (float32), values."""
    return s_str(name) + struct.pack("<IQB", 1, len(values), 0) + struct.pack(f"<{len(values)}f", *values)


def signature(kind, covered, key):
    """The signature field (MessageSignature.swift): Ed25519 over SHA-256("lte-signed-message" ‖ type ‖
    the body before it), or none without a key."""
    if key is None:
        return struct.pack("<I", 0)
    digest = hashlib.sha256(b"lte-signed-message" + struct.pack("<H", kind) + covered).digest()
    return struct.pack("<I", 64) + key.sign(digest)


def hello_body(worker, heads, nonce=None, sent_at=None, max_heads=0, key=None):
    body = (s_str(worker) + s_ints(heads) + bytes(32) + struct.pack("<Q", nonce or secrets.randbits(64))
            + struct.pack("<Q", sent_at if sent_at is not None else int(time.time() * 1000)) + struct.pack("<I", max_heads))
    return body + signature(HELLO, body, key)


def push_body(worker, rnd, base, heads, tokens, tensors, key=None):
    body = (s_str(worker) + struct.pack("<Q", rnd) + s_str(base) + s_ints(heads) + s_floats([3.0] * len(heads))
            + struct.pack("<QQ", tokens, secrets.randbits(64)) + struct.pack("<QQ", 0, 0) + struct.pack("<I", len(tensors))
            + b"".join(s_tensor(n, v) for n, v in tensors))
    return body + signature(PUSH, body, key)


def leave_body(worker, rnd, heads, tensors, key=None):
    body = (s_str(worker) + struct.pack("<Q", rnd) + s_ints(heads) + struct.pack("<I", len(heads))
            + b"".join(struct.pack("<Q", 1) for _ in heads) + struct.pack("<QI", secrets.randbits(64), len(tensors))
            + b"".join(s_tensor(n, v) for n, v in tensors))
    return body + signature(LEAVE, body, key)


class Reader:
    def __init__(self, data, at=20):
        self.d, self.i = data, at

    def take(self, n):
        v = self.d[self.i:self.i + n]
        self.i += n
        return v

    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def string(self): return self.take(self.u32()).decode()


def decode(reply):
    """(type, fields) of a reply frame: enough of welcome, status and error for the attacks."""
    if len(reply) < 52 or reply[:4] != b"LTE1":
        return ("garbage", {})
    kind = struct.unpack("<H", reply[6:8])[0]
    r = Reader(reply)
    if kind == ERROR:
        code = struct.unpack("<H", r.take(2))[0]
        return ("error", {"code": CODES.get(code, str(code)), "message": r.string()})
    if kind == WELCOME:
        run, rnd, base, config = r.string(), r.u64(), r.string(), json.loads(r.take(r.u32()))
        tensors = {}
        for _ in range(r.u32()):
            name, rank = r.string(), r.u32()
            count = 1
            for _ in range(rank): count *= r.u64()
            tensors[name] = count
            encoding = r.take(1)[0]
            r.take(4 * count if encoding == 0 else r.u64())
        heads = [r.u32() for _ in range(r.u32())]
        return ("welcome", {"round": rnd, "base": base, "config": config, "tensors": tensors, "heads": heads})
    if kind == STATUS:
        return ("status", {"round": r.u64()})
    if kind == ROUND_RESULT:
        return ("round result", {"round": r.u64()})
    return (str(kind), {})
