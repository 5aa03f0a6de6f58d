import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ferlab.classifier import load_model
from ferlab.data import EMOTIONS
from ferlab.predict import Analyzer
from ferlab.serve import create_app


@pytest.fixture
def client(tiny_model):
    return TestClient(create_app(Analyzer(load_model(tiny_model)), max_upload_bytes=200_000))


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buffer, "PNG")
    return buffer.getvalue()


def test_analyze_a_real_face(client, astronaut):
    response = client.post("/v1/analyze", files={"file": ("a.jpg", astronaut.read_bytes(), "image/jpeg")})
    assert response.status_code == 200
    body = response.json()
    assert body["width"] == 512 and len(body["faces"]) == 1
    assert set(body["faces"][0]["probabilities"]) == set(EMOTIONS)


def test_health_model_page_and_docs(client):
    assert client.get("/v1/health").json() == {"status": "ok"}
    assert client.get("/v1/model").json()["model"] == "paper_cnn"
    page = client.get("/")
    assert page.status_code == 200 and "/v1/analyze" in page.text and "getUserMedia" in page.text
    assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ({"file": ("x.jpg", b"", "image/jpeg")}, 400, "empty file"),
        ({"file": ("x.jpg", b"GIF89a but really text", "image/jpeg")}, 422, "not an image file"),
        ({"file": ("x.png", png(64, 64)[:60], "image/png")}, 422, "corrupt or truncated"),
        ({"file": ("x.png", b"hello, I am text", "image/png")}, 415, "not a JPEG, PNG"),
        ({"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"0" * 300_000, "image/png")}, 413, "byte limit"),
        ({"other": ("x.png", png(10, 10), "image/png")}, 422, "multipart field 'file'"),
    ],
)
def test_bad_requests_get_json_errors(client, files, status, message):
    response = client.post("/v1/analyze", files=files)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_too_many_pixels_is_refused_without_decoding(client):
    big = png(6000, 5000, "1")  # 30 megapixels, small on the wire
    response = client.post("/v1/analyze", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 422 and "pixel limit" in response.json()["error"]["message"]


def test_malformed_multipart_and_unknown_paths(client):
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = client.post("/v1/analyze", content=b"--xyz\r\ngarbage", headers=headers)
    assert response.status_code in (400, 422) and "error" in response.json()
    assert client.get("/../../etc/passwd").status_code == 404
    assert client.get("/static/../../etc/passwd").status_code == 404
