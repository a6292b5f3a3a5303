import { expect } from 'chai';
import { checkSchedule, learningRateAt } from '../../lib/train/schedule.js';

describe('train/schedule: warm-up then cosine or linear decay', function () {
  const base = { peak: 1e-3, totalSteps: 110, warmupSteps: 10, end: 1e-4 };
  it('warms up linearly: update s uses peak·(s+1)/w', function () {
    expect(learningRateAt(0, base)).to.be.closeTo(1e-4, 1e-15); // 1e-3 · 1/10
    expect(learningRateAt(4, base)).to.be.closeTo(5e-4, 1e-15); // 1e-3 · 5/10
    expect(learningRateAt(9, base)).to.be.closeTo(1e-3, 1e-15); // 1e-3 · 10/10
  });
  it('cosine: peak at the end of warm-up, the midpoint halfway, end at the last update', function () {
    expect(learningRateAt(10, base)).to.be.closeTo(1e-3, 1e-15); // t = 0
    expect(learningRateAt(60, base)).to.be.closeTo(5.5e-4, 1e-15); // t = ½: end + (peak − end)·½ = 1e-4 + 4.5e-4
    expect(learningRateAt(110, base)).to.be.closeTo(1e-4, 1e-15); // t = 1
  });
  it('linear: straight from peak to end', function () {
    const lin = { ...base, decay: 'linear' as const };
    expect(learningRateAt(35, lin)).to.be.closeTo(7.75e-4, 1e-15); // t = 25/100: 1e-3 − 0.25·9e-4
  });
  it('constant keeps the peak after warm-up', function () {
    expect(learningRateAt(100, { ...base, decay: 'constant' as const })).to.equal(1e-3);
  });
  it('rejects bad schedules', function () {
    expect(() => checkSchedule({ ...base, warmupSteps: 200 })).to.throw(/warmupSteps 200 must be ≤ totalSteps 110/);
    expect(() => checkSchedule({ ...base, peak: 0 })).to.throw(/peak must be a finite number > 0, got 0/);
    expect(() => checkSchedule({ ...base, end: 1 })).to.throw(
      /end learning rate must be in \[0, peak = 0.001\], got 1/,
    );
    expect(() => checkSchedule({ ...base, decay: 'step' as never })).to.throw(/decay must be .* got "step"/);
  });
});
