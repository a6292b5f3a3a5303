import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { verifyDataDir } from '../../lib/data/build.js';
import { DATASETS, splitValidation, subset, toUnitRange, type ImageDataset } from '../../lib/data/datasets.js';
import { loadDataset } from '../../lib/data/load.js';
import { encodeIdx } from '../../lib/data/idx.js';
import { manifestEntry, readManifest, type Manifest } from '../../lib/data/manifest.js';
import { defaultDataDir } from '../../lib/data/paths.js';

const DATA_DIR = defaultDataDir();

// SHA-256 of the original, uncompressed IDX files as pinned by independent public code that
// downloads them from their publishers (MNIST: scripts fetching the CVDF mirror of
// yann.lecun.com/exdb/mnist; Fashion-MNIST: code fetching github.com/zalandoresearch/
// fashion-mnist data/fashion, whose archives match Zalando's published MD5 sums). They were not
// computed from our files: equality means data/ holds exactly the canonical data sets.
const PUBLISHED_IDX_SHA256: Record<string, string> = {
  'mnist/train-images-idx3-ubyte.gz': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
  'mnist/train-labels-idx1-ubyte.gz': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
  'mnist/t10k-images-idx3-ubyte.gz': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
  'mnist/t10k-labels-idx1-ubyte.gz': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
  'fashion-mnist/train-images-idx3-ubyte.gz': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
  'fashion-mnist/train-labels-idx1-ubyte.gz': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
  'fashion-mnist/t10k-images-idx3-ubyte.gz': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
  'fashion-mnist/t10k-labels-idx1-ubyte.gz': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
};

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function classCounts(ds: ImageDataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (const label of ds.labels) counts[label]++;
  return counts;
}

/** Mean and std (population) in float64. */
function stats(values: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of values) s += v;
  const mean = s / values.length;
  let s2 = 0;
  for (const v of values) s2 += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(s2 / values.length) };
}

describe('data/datasets: the real files in data/', function () {
  this.timeout(120000);

  it('every file matches the manifest (sizes, SHA-256 of stored and decoded bytes, IDX shapes)', async function () {
    const files = await verifyDataDir(DATA_DIR);
    expect(files.map((f) => f.path).sort()).to.deep.equal(
      ['mnist', 'fashion-mnist', 'tiny/mnist', 'tiny/fashion-mnist']
        .flatMap((d) =>
          [
            't10k-images-idx3-ubyte.gz',
            't10k-labels-idx1-ubyte.gz',
            'train-images-idx3-ubyte.gz',
            'train-labels-idx1-ubyte.gz',
          ].map((f) => `${d}/${f}`),
        )
        .sort(),
    );
    let total = 0;
    for (const f of files) {
      expect(statSync(join(DATA_DIR, f.path)).size, f.path).to.equal(f.bytes);
      total += f.bytes;
    }
    expect(total, 'committed data stays under ~45 MB').to.be.below(45e6);
  });

  it('the decoded full data sets are the published MNIST and Fashion-MNIST files', async function () {
    const manifest = await readManifest(DATA_DIR);
    for (const [path, want] of Object.entries(PUBLISHED_IDX_SHA256)) {
      expect(manifest.files[path].decoded.sha256, path).to.equal(want);
    }
  });

  for (const name of ['mnist', 'fashion-mnist'] as const) {
    describe(name, function () {
      let train: ImageDataset | undefined;
      let test: ImageDataset | undefined;
      before(async function () {
        train = await loadDataset(name, 'train');
        test = await loadDataset(name, 'test');
      });
      after(function () {
        train = undefined; // release ~190 MB before the next suite
        test = undefined;
      });

      it('has 60000 training and 10000 test images of 28×28 with labels in 0..9', function () {
        for (const [ds, n] of [
          [train!, 60000],
          [test!, 10000],
        ] as const) {
          expect([ds.count, ds.height, ds.width, ds.channels, ds.numClasses]).to.deep.equal([n, 28, 28, 1, 10]);
          expect(ds.images.length).to.equal(n * 784);
          expect(ds.labels.length).to.equal(n);
          expect(ds.classNames).to.have.length(10);
        }
      });

      it('has the known class counts and first labels', function () {
        // Computed with numpy 1.24 (np.bincount) from the same files; the MNIST counts equal the
        // widely quoted ones (train 5923 zeros … 5949 nines, test 980 … 1009), Fashion-MNIST is
        // balanced by construction (Zalando README: 6000 / 1000 per class).
        const want =
          name === 'mnist'
            ? {
                train: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
                test: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
                firstTrain: [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
                firstTest: [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
              }
            : {
                train: new Array(10).fill(6000),
                test: new Array(10).fill(1000),
                firstTrain: [9, 0, 0, 3, 0, 2, 7, 2, 5, 5],
                firstTest: [9, 2, 1, 1, 6, 1, 4, 6, 5, 7],
              };
        expect(classCounts(train!)).to.deep.equal(want.train);
        expect(classCounts(test!)).to.deep.equal(want.test);
        expect(Array.from(train!.labels.subarray(0, 10))).to.deep.equal(want.firstTrain);
        expect(Array.from(test!.labels.subarray(0, 10))).to.deep.equal(want.firstTest);
      });

      it('standardises with the training set mean/std: the training pixels have mean 0, std 1', async function () {
        const info = DATASETS[name];
        // Constants against the usual published ones (PyTorch examples/mnist: 0.1307, 0.3081;
        // Fashion-MNIST commonly 0.2860, 0.3530), to their 4 digits.
        const published = name === 'mnist' ? [0.1307, 0.3081] : [0.286, 0.353];
        expect(Math.abs(info.mean - published[0])).to.be.below(5e-5);
        expect(Math.abs(info.std - published[1])).to.be.below(5e-5);
        // Re-derive them from the bytes: 'unit' gives byte / 255.
        const unit = await loadDataset(name, 'train', { normalization: 'unit' });
        const u = stats(unit.images);
        expect(Math.abs(u.mean - info.mean)).to.be.below(1e-6);
        expect(Math.abs(u.std - info.std)).to.be.below(1e-6);
        const s = stats(train!.images);
        expect(Math.abs(s.mean)).to.be.below(1e-5);
        expect(Math.abs(s.std - 1)).to.be.below(1e-5);
        expect(train!.normalization).to.deep.equal({ kind: 'standard', mean: info.mean, std: info.std });
        // Element by element: standard = (unit − mean) / std, and toUnitRange inverts it.
        const back = toUnitRange(train!.images.subarray(0, 784 * 50), train!.normalization);
        for (let i = 0; i < back.length; i++) {
          const want = (unit.images[i] - info.mean) / info.std;
          if (Math.abs(train!.images[i] - want) > 1e-6 || Math.abs(back[i] - unit.images[i]) > 1e-6) {
            expect.fail(
              `pixel ${i}: standard ${train!.images[i]} vs ${want}, round trip ${back[i]} vs ${unit.images[i]}`,
            );
          }
        }
        // 28×28 bytes of MNIST train image 0 sum to 27525 (numpy, same run as the counts above).
        if (name === 'mnist') {
          let sum = 0;
          for (let i = 0; i < 784; i++) sum += unit.images[i] * 255;
          expect(Math.round(sum)).to.equal(27525);
        }
      });

      it(`the tiny slice is the first 512 training and 256 test images`, async function () {
        const tinyName = name === 'mnist' ? 'tiny-mnist' : 'tiny-fashion-mnist';
        const tinyTrain = await loadDataset(tinyName, 'train');
        const tinyTest = await loadDataset(tinyName, 'test');
        expect([tinyTrain.count, tinyTest.count]).to.deep.equal([512, 256]);
        expect(Array.from(tinyTrain.images)).to.deep.equal(Array.from(train!.images.subarray(0, 512 * 784)));
        expect(Array.from(tinyTrain.labels)).to.deep.equal(Array.from(train!.labels.subarray(0, 512)));
        expect(Array.from(tinyTest.labels)).to.deep.equal(Array.from(test!.labels.subarray(0, 256)));
        expect(tinyTest.images.subarray(0, 256 * 784)).to.deep.equal(test!.images.subarray(0, 256 * 784));
        // Every class is present in each tiny split, so a few steps can learn something.
        expect(classCounts(tinyTrain).every((c) => c > 0)).to.equal(true);
        expect(classCounts(tinyTest).every((c) => c > 0)).to.equal(true);
      });
    });
  }

  it("'tiny' is short for 'tiny-mnist'", async function () {
    const ds = await loadDataset('tiny', 'test');
    expect(ds.name).to.equal('tiny-mnist');
    expect(ds.count).to.equal(256);
  });
});

describe('data/datasets: splitValidation and subset', function () {
  let ds: ImageDataset;
  before(async function () {
    ds = await loadDataset('tiny-mnist', 'train');
  });

  it('gives disjoint, complete, order-keeping parts of the requested size', function () {
    const { train, validation } = splitValidation(ds, { fraction: 0.2, seed: 7 });
    expect(validation.count).to.equal(102); // round(0.2 · 512) = round(102.4)
    expect(train.count).to.equal(410);
    expect([train.split, validation.split]).to.deep.equal(['train', 'validation']);
    const a = Array.from(train.sourceIndices!);
    const b = Array.from(validation.sourceIndices!);
    expect(new Set([...a, ...b]).size).to.equal(512);
    expect(a.filter((i) => b.includes(i))).to.deep.equal([]);
    expect(a).to.deep.equal([...a].sort((x, y) => x - y));
    // Images and labels travel with their index.
    for (const part of [train, validation]) {
      part.sourceIndices!.forEach((src, k) => {
        expect(part.labels[k]).to.equal(ds.labels[src]);
        expect(part.images[k * 784 + 400]).to.equal(ds.images[src * 784 + 400]);
      });
    }
  });

  it('is deterministic in the seed', function () {
    const v1 = splitValidation(ds, { count: 64, seed: 1 }).validation.sourceIndices!;
    const v1again = splitValidation(ds, { count: 64, seed: 1 }).validation.sourceIndices!;
    const v2 = splitValidation(ds, { count: 64, seed: 2 }).validation.sourceIndices!;
    expect(Array.from(v1again)).to.deep.equal(Array.from(v1));
    expect(Array.from(v2)).to.not.deep.equal(Array.from(v1));
  });

  it('subset of a subset keeps indices into the original split', function () {
    const first = subset(ds, [10, 20, 30]);
    const second = subset(first, [2, 0]);
    expect(Array.from(second.sourceIndices!)).to.deep.equal([30, 10]);
    expect(Array.from(second.labels)).to.deep.equal([ds.labels[30], ds.labels[10]]);
    expect(() => subset(ds, [512])).to.throw(/index 512 at position 0 is outside \[0, 512\)/);
  });

  it('rejects bad arguments, naming them', function () {
    expect(() => splitValidation(ds, { seed: 1 })).to.throw(/exactly one of count or fraction/);
    expect(() => splitValidation(ds, { count: 5, fraction: 0.1, seed: 1 })).to.throw(
      /exactly one of count or fraction/,
    );
    expect(() => splitValidation(ds, { fraction: 1, seed: 1 })).to.throw(/fraction must be in \(0, 1\), got 1/);
    expect(() => splitValidation(ds, { count: 512, seed: 1 })).to.throw(
      /integer in \[1, 511\] for 512 images, got 512/,
    );
    expect(() => splitValidation(ds, { count: 10, seed: -1 })).to.throw(
      /seed must be an integer in \[0, 2\^32\), got -1/,
    );
  });
});

describe('data/datasets: clear errors on damaged data (temporary copies)', function () {
  const REL_IMAGES = 'tiny/mnist/train-images-idx3-ubyte.gz';
  const REL_LABELS = 'tiny/mnist/train-labels-idx1-ubyte.gz';
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'softmoe-data-'));
    cpSync(join(DATA_DIR, 'tiny', 'mnist'), join(dir, 'tiny', 'mnist'), { recursive: true });
    cpSync(join(DATA_DIR, 'manifest.json'), join(dir, 'manifest.json'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Replace a file by gzipped `idx` bytes and record it in the manifest, so only the content is wrong. */
  function replaceConsistently(rel: string, idx: Uint8Array, shape: number[]): void {
    const stored = new Uint8Array(gzipSync(idx));
    writeFileSync(join(dir, rel), stored);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    manifest.files[rel] = manifestEntry(stored, idx, shape);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  }

  async function loadError(options: { verify?: boolean } = {}): Promise<string> {
    try {
      await loadDataset('tiny-mnist', 'train', { dataDir: dir, ...options });
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected loadDataset to throw');
  }

  it('the untouched copy loads (the damage below is what fails)', async function () {
    const ds = await loadDataset('tiny-mnist', 'train', { dataDir: dir });
    expect(ds.count).to.equal(512);
  });

  it('missing file: names the path and how to restore it', async function () {
    rmSync(join(dir, REL_LABELS));
    const msg = await loadError();
    expect(msg).to.contain(`data file missing: ${join(dir, REL_LABELS)} does not exist`);
    expect(msg).to.contain(`git checkout -- data/${REL_LABELS}`);
  });

  it('missing manifest: names the path', async function () {
    rmSync(join(dir, 'manifest.json'));
    expect(await loadError()).to.contain(`data manifest missing: ${join(dir, 'manifest.json')} does not exist`);
  });

  it('truncated file: size against the manifest; without verification, gunzip fails clearly', async function () {
    const path = join(dir, REL_IMAGES);
    const size = statSync(path).size;
    truncateSync(path, 1000);
    expect(await loadError()).to.contain(`data file ${path} is truncated: 1000 bytes, the manifest says ${size}`);
    expect(await loadError({ verify: false })).to.match(
      /is truncated or corrupted: gunzip failed \(unexpected end of file\)/,
    );
  });

  it('checksum mismatch: names the expected and actual SHA-256', async function () {
    const path = join(dir, REL_IMAGES);
    const bytes = readFileSync(path);
    const expected = sha256(bytes);
    bytes[5000] ^= 0xff;
    writeFileSync(path, bytes);
    const msg = await loadError();
    expect(msg).to.contain(`checksum mismatch for data file ${path}: expected sha256 ${expected}`);
    expect(msg).to.contain(`got ${sha256(bytes)}`);
  });

  it('wrong magic number: names the value and the expectation', async function () {
    const idx = new Uint8Array(gunzipSync(readFileSync(join(dir, REL_IMAGES))));
    idx[3] = 0x02; // 0x00000802: a 2-D file where images need 3-D
    replaceConsistently(REL_IMAGES, idx, [512, 28 * 28]);
    const msg = await loadError();
    expect(msg).to.contain(join(dir, REL_IMAGES));
    expect(msg).to.contain('wrong IDX magic number 0x00000802');
    expect(msg).to.contain('expected 0x00000803 (unsigned bytes, 3 dimensions)');
  });

  it('truncated IDX body inside a valid gzip: names both sizes', async function () {
    const idx = new Uint8Array(gunzipSync(readFileSync(join(dir, REL_IMAGES))));
    replaceConsistently(REL_IMAGES, idx.subarray(0, idx.length - 784), [512, 28, 28]);
    expect(await loadError()).to.contain(
      'header says [512, 28, 28] = 401408 bytes of data, the file holds only 400624',
    );
  });

  it('label/image count mismatch and a wrong total count', async function () {
    const labels = new Uint8Array(gunzipSync(readFileSync(join(dir, REL_LABELS))));
    replaceConsistently(REL_LABELS, encodeIdx([511], labels.subarray(8, 8 + 511)), [511]);
    expect(await loadError()).to.match(
      /tiny-mnist train: .*train-images-idx3-ubyte\.gz holds 512 images but .*train-labels-idx1-ubyte\.gz holds 511 labels/,
    );
    const images = new Uint8Array(gunzipSync(readFileSync(join(dir, REL_IMAGES))));
    replaceConsistently(REL_IMAGES, encodeIdx([511, 28, 28], images.subarray(16, 16 + 511 * 784)), [511, 28, 28]);
    expect(await loadError()).to.match(/tiny-mnist train: expected 512 images, .* holds 511/);
  });

  it('a label outside 0..9', async function () {
    const labels = new Uint8Array(gunzipSync(readFileSync(join(dir, REL_LABELS))));
    labels[8 + 3] = 10;
    replaceConsistently(REL_LABELS, labels, [512]);
    expect(await loadError()).to.match(/label 10 at index 3 is outside \[0, 10\)/);
  });

  it('bad names and options', async function () {
    let msg = '';
    // @ts-expect-error: testing a bad name from untyped callers (notebooks, CLI)
    await loadDataset('cifar10', 'train').catch((e: Error) => (msg = e.message));
    expect(msg).to.match(/unknown data set "cifar10"; expected one of "mnist", "fashion-mnist"/);
    // @ts-expect-error: bad split
    await loadDataset('tiny', 'val').catch((e: Error) => (msg = e.message));
    expect(msg).to.equal('split must be "train" or "test", got "val"');
    expect(existsSync(dir)).to.equal(true);
  });
});
