"""payload-writer's parallel paths: generate writes the same bytes whatever --threads is, and apply
writes the same slot with one decoding thread and with several (more threads than CPUs included)."""
import hashlib
import os
import subprocess


def make_image(path, size):
    # compressible text, incompressible noise and zeros, so REPLACE_BZ and REPLACE both occur
    text = b"".join(b"line %d of a compressible file\n" % i for i in range(40000))
    data = bytearray()
    while len(data) < size:
        data += text[:300000] + os.urandom(200000) + bytes(150000)
    path.write_bytes(bytes(data[:size]))


def test_generate_output_does_not_depend_on_threads(program, tmp_path):
    pw = program("payload-writer")
    img = tmp_path / "usr.img"
    make_image(img, 3 * 1024 * 1024 + 12288)
    digests = set()
    for n in (1, 2, 5):
        out = tmp_path / f"p{n}.bin"
        subprocess.run([str(pw), "generate", f"--image={img}", f"--output={out}", f"--threads={n}",
                        "--chunk-size=256K"], check=True, capture_output=True)
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_apply_same_result_with_any_thread_count(program, tmp_path):
    pw = program("payload-writer")
    img = tmp_path / "usr.img"
    make_image(img, 3 * 1024 * 1024)
    payload = tmp_path / "p.bin"
    subprocess.run([str(pw), "generate", f"--image={img}", f"--output={payload}", "--chunk-size=256K"],
                   check=True, capture_output=True)
    for n in (1, 3, 0):
        target = tmp_path / f"t{n}.img"
        with open(target, "wb") as f:
            f.truncate(4 * 1024 * 1024)
        r = subprocess.run([str(pw), "apply", str(payload), f"--target={target}", "--insecure-no-signature",
                            "--no-progress", f"--threads={n}"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert target.read_bytes()[:img.stat().st_size] == img.read_bytes()


def test_bad_threads_value_is_refused(program, tmp_path):
    r = subprocess.run([str(program("payload-writer")), "generate", "--threads=lots", "--image=x", "--output=y"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "--threads=" in r.stderr
