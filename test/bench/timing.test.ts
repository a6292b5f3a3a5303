/** timeMs (lib/bench/timing.ts) with a fake clock: run counts, statistics, disposal, errors. */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { timeMs } from '../../lib/bench/timing.js';

describe('bench/timing: timeMs', function () {
  it('skips the warm-up runs and reports median, min and max of the recorded ones', async function () {
    // Run i takes durations[i] ms on the fake clock; the first two are warm-up.
    const durations = [100, 50, 3, 9, 4, 7, 5];
    let clock = 0;
    let calls = 0;
    const timing = await timeMs(
      () => {
        clock += durations[calls++]!;
        return tf.scalar(1);
      },
      { warmup: 2, repeats: 5, now: () => clock },
    );
    expect(calls).to.equal(7);
    expect(timing.samplesMs).to.deep.equal([3, 9, 4, 7, 5]);
    expect(timing.medianMs).to.equal(5); // sorted 3 4 5 7 9
    expect(timing.minMs).to.equal(3);
    expect(timing.maxMs).to.equal(9);
  });

  it('takes the mean of the middle two for an even count', async function () {
    const durations = [2, 8, 4, 6];
    let clock = 0;
    let calls = 0;
    const timing = await timeMs(
      () => {
        clock += durations[calls++]!;
        return [tf.scalar(1)];
      },
      { warmup: 0, repeats: 4, now: () => clock },
    );
    expect(timing.medianMs).to.equal(5); // (4 + 6) / 2
  });

  it('waits for and disposes every tensor returned (no leak), also from a promise', async function () {
    const before = tf.memory().numTensors;
    const timing = await timeMs(async () => ({ a: tf.ones([3]), b: [tf.zeros([2, 2])] }), { warmup: 1, repeats: 3 });
    expect(tf.memory().numTensors).to.equal(before);
    expect(timing.samplesMs).to.have.length(3);
    timing.samplesMs.forEach((ms) => expect(ms).to.be.at.least(0));
  });

  it('rejects bad options with a clear message', async function () {
    let error: unknown;
    try {
      await timeMs(() => tf.scalar(0), { repeats: 0 });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.match(/repeats must be an integer ≥ 1, got 0/);
  });
});
