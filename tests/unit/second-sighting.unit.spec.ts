import { describe, expect, it } from 'vitest';
import { SecondSighting } from '../../src/infrastructure/tokens/second-sighting.js';

const token = (n: number) => `eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.${n.toString(36).padStart(12, 'x')}signature${n}`;

describe('SecondSighting', () => {
  it('says no the first time a token is seen and yes the second', () => {
    const sightings = new SecondSighting(1024);
    expect(sightings.seenBefore(token(1))).toBe(false);
    expect(sightings.seenBefore(token(1))).toBe(true);
  });

  it('frees the slot once it said yes: a third sighting starts over', () => {
    const sightings = new SecondSighting(1024);
    sightings.seenBefore(token(1));
    sightings.seenBefore(token(1));
    expect(sightings.seenBefore(token(1))).toBe(false);
  });

  it('tells distinct tokens apart: of 500 tokens seen once in a table of 4096 slots, none is taken for seen', () => {
    const sightings = new SecondSighting(4096);
    const answers = Array.from({ length: 500 }, (_, n) => sightings.seenBefore(token(n)));
    expect(answers.filter(Boolean)).toEqual([]);
  });

  it('keeps most of a recent set while it fits: 500 tokens in 4096 slots are nearly all recognised', () => {
    const sightings = new SecondSighting(4096);
    for (let n = 0; n < 500; n++) sightings.seenBefore(token(n));
    const recognised = Array.from({ length: 500 }, (_, n) => sightings.seenBefore(token(n))).filter(Boolean).length;
    // Slots collide at random: with 500 in 4096, about 6 % land on a taken slot.
    expect(recognised).toBeGreaterThan(430);
  });

  it('forgets old sightings as new tokens take their slots, in a small table', () => {
    const sightings = new SecondSighting(2);
    for (let n = 0; n < 100; n++) sightings.seenBefore(token(n));
    const recognised = Array.from({ length: 98 }, (_, n) => sightings.seenBefore(token(n))).filter(Boolean).length;
    expect(recognised).toBe(0);
  });
});
