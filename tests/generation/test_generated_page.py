"""generated/index.html in a real browser: every roll picture decodes and every audio player loads its WAV."""

from __future__ import annotations

import wave

import pytest

# Resolves once every <audio> has its metadata (or an error) and every <img> has loaded (or failed).
LOAD_EVERYTHING = """(async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(audio => new Promise(done => {
    audio.addEventListener('loadedmetadata', done, {once: true});
    audio.addEventListener('error', done, {once: true});
    audio.preload = 'metadata';  // the page says preload="none": load now, as a click on play would
    audio.load();
  })));
  const images = [...document.images];
  await Promise.all(images.map(image => image.complete ? null : new Promise(done => {
    image.onload = image.onerror = done;
  })));
  return {
    images: images.map(image => ({src: image.getAttribute('src'), width: image.naturalWidth})),
    audios: audios.map(audio => ({src: audio.getAttribute('src'), ready: audio.readyState,
                                  error: audio.error && audio.error.code, seconds: audio.duration})),
    links: [...document.links].map(link => link.getAttribute('href')),
  };
})()"""


@pytest.mark.slow
def test_every_picture_and_audio_player_of_the_generated_page_loads(tiny_repro, page, saved_for_people):
    generated = tiny_repro / "generated"
    page.open((generated / "index.html").as_uri())
    loaded = page.evaluate(LOAD_EVERYTHING)

    assert [image["src"] for image in loaded["images"]] == ["000.png"]  # generate.pieces is 1 in the tiny repro
    assert all(image["width"] > 0 for image in loaded["images"]), loaded["images"]
    assert [audio["src"] for audio in loaded["audios"]] == ["000.wav"]
    for audio in loaded["audios"]:
        assert audio["error"] is None and audio["ready"] >= 1, audio  # 1 = HAVE_METADATA: the WAV decoded
        with wave.open(str(generated / audio["src"])) as written:
            assert audio["seconds"] == pytest.approx(written.getnframes() / written.getframerate(), abs=0.01)
    assert all((generated / link).is_file() for link in loaded["links"]), loaded["links"]
    page.screenshot(saved_for_people("generated-index.png"))
