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
    # measured: 13 of 15 (zidane 2, t1 6, bus 2), alike with 1 and 2 interpreter threads; the two missed are
    # bus.jpg's people cut by the frame with no head in view (the detector finds people by the head and shoulders);
    # the old one-person-per-call detector found 9 of 15. One of zidane's two is kept at presence 0.53 (gate 0.5).
    assert sum(found.values()) >= 11, found
    assert found['t1.jpg'] >= 5 and found['zidane.jpg'] >= 1 and found['bus.jpg'] >= 2, found


def test_fetch_takes_each_photograph_from_its_archive_once(tmp_path, monkeypatch):
    """fetch() without the registry: a wheel (zip) and an sdist (tar.gz) built here stand in for pip's downloads;
    each archive is downloaded once for all its photographs, photographs already there are kept."""
    import tarfile
    import zipfile
    archives = tmp_path / 'archives'
    archives.mkdir()
    whl, sdist = archives / 'pkg-1.0-py3-none-any.whl', archives / 'other-2.0.tar.gz'
    with zipfile.ZipFile(whl, 'w') as z:
        z.writestr('pkg/assets/a.jpg', b'AAA')
        z.writestr('pkg/assets/b.jpg', b'BBB')
    (tmp_path / 'c.jpg').write_bytes(b'CCC')
    with tarfile.open(sdist, 'w:gz') as t:
        t.add(tmp_path / 'c.jpg', arcname='other-2.0/data/c.jpg')
    photos = (demo_photos.Photo('a.jpg', 1, 'pkg==1.0', 'pkg/assets/a.jpg', ''),
              demo_photos.Photo('b.jpg', 2, 'pkg==1.0', 'pkg/assets/b.jpg', ''),
              demo_photos.Photo('c.jpg', 1, 'other==2.0', 'other-2.0/data/c.jpg', ''))
    downloads = []

    def pip_download(requirement, dest):
        downloads.append(requirement)
        return whl if requirement.startswith('pkg') else sdist

    monkeypatch.setattr(demo_photos, 'PHOTOS', photos)
    monkeypatch.setattr(demo_photos, '_pip_download', pip_download)
    out = tmp_path / 'photos'
    out.mkdir()
    (out / 'b.jpg').write_bytes(b'mine')
    paths = demo_photos.fetch(out)
    assert [p.read_bytes() for p in paths] == [b'AAA', b'mine', b'CCC']
    assert sorted(downloads) == ['other==2.0', 'pkg==1.0']
    assert sorted(p.name for p in out.iterdir()) == ['a.jpg', 'b.jpg', 'c.jpg']   # no partial files left
    demo_photos.fetch(out)
    assert len(downloads) == 2   # all there: nothing downloaded again


def test_a_wrong_checkpoint_is_one_line_and_leaves_no_folder(photos, tmp_path):
    from common.errors import UserError
    with pytest.raises(UserError, match='does not exist'):
        demo_photos.main(['--ckpt', str(tmp_path / 'missing.pth.tar'), '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()
