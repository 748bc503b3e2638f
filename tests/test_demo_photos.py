"""The demo's person detector on real photographs that ship in registry packages (demo/photos.py: fetched by
requirements.sh): people found vs people there, counted by hand."""
import pytest

from demo import photos as demo_photos


@pytest.fixture(scope='module')
def photos():
    paths = [demo_photos.PHOTOS_DIR / p.name for p in demo_photos.PHOTOS]
    if not all(p.is_file() for p in paths):
        pytest.skip(f'the photographs are not in {demo_photos.PHOTOS_DIR}: python demo/photos.py --fetch '
                    f'(needs the package registry once)')
    return paths


def test_the_detector_finds_the_people_of_real_photographs(photos, tmp_path):
    found = demo_photos.count_people(photos, tmp_path / 'poses.json')
    there = {p.name: p.people for p in demo_photos.PHOTOS}
    # nobody invented, nobody found twice (three one-person photographs, one found in each)
    assert all(found[n] <= there[n] for n in there), found
    assert [found[n] for n in ('astronaut.png', 'camera.png', 'grace_hopper.jpg')] == [1, 1, 1], found
    # measured: 13 of 15; the two missed are bus.jpg's people cut by the frame with no head in view (the
    # detector finds people by the head and shoulders); the old one-person-per-call detector found 9 of 15
    assert sum(found.values()) >= 11, found
    assert found['t1.jpg'] >= 5 and found['zidane.jpg'] == 2 and found['bus.jpg'] >= 2, found
