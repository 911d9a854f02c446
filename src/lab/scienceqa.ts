/**
 * Task 2, ScienceQA-like multiple choice, written in the official ScienceQA layout (lupantech/ScienceQA:
 * data/scienceqa/problems.json, pid_splits.json, images/<split>/<pid>/image.png) so that LaVIN's QCM-ALE format
 * (text/templates.ts scienceQaPrompt and scienceQaTarget) and egret's ScienceQA reader and scorer apply unchanged.
 *
 * Half the problems need their picture (colours, shapes, counts and positions of drawn objects; no hint, so the
 * picture is the only context); the others are text only, some with a hint as their context (ScienceQA's TXT
 * questions). Every problem has a lecture on its skill and a solution that works the answer out.
 */
import sharp from 'sharp';
import type { ScienceQaProblem } from '../text/templates.js';
import type { RGB } from '../vision/image.js';
import { sampleRng, type Rng } from './random.js';

export const SCIENCE_QA_TASK = 'scienceqa';
export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** A problem as problems.json writes it (the fields and their order of the official file). */
export interface OfficialProblem extends ScienceQaProblem {
  /** 'image.png' when the problem has a picture, else null. */
  image: string | null;
  task: string;
  grade: string;
  subject: string;
  topic: string;
  category: string;
  skill: string;
  split: Split;
}

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond'] as const;
type Shape = (typeof SHAPES)[number];
/** Colour names and the RGB they are drawn in. */
export const COLOURS = { red: [220, 40, 40], orange: [245, 140, 20], yellow: [240, 210, 30], green: [40, 160, 60], blue: [40, 90, 220], purple: [140, 60, 190], black: [25, 25, 25] } as const;
type Colour = keyof typeof COLOURS;
const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];

interface SceneObject {
  shape: Shape;
  colour: Colour;
  /** The colour's RGB, varied a little from picture to picture. */
  rgb: RGB;
  /** Centre and size in pixels. */
  cx: number;
  cy: number;
  size: number;
}

/** A picture: objects drawn on a light background. */
export interface Scene {
  width: number;
  height: number;
  background: RGB;
  objects: SceneObject[];
}

export interface ScienceQaSample {
  /** The problem id, as problems.json keys it. */
  pid: string;
  problem: OfficialProblem;
  /** The picture of an image problem. */
  scene?: Scene;
}

/** The fields a family decides; the sample adds the split, the task type and the image name. */
interface Drawn {
  question: string;
  /** The correct choice first; the sample shuffles them. */
  choices: string[];
  hint?: string;
  lecture: string;
  solution: string;
  grade: string;
  subject: string;
  topic: string;
  category: string;
  skill: string;
  scene?: Scene;
}

type Family = (rng: Rng) => Drawn;

/** Sample `index` of the dataset of `seed`: its pid is `index + 1`, as the official pids count from 1. */
export function scienceQaSample(seed: number, index: number): ScienceQaSample {
  const rng = sampleRng(seed, SCIENCE_QA_TASK, index);
  const roll = rng.float();
  const split: Split = roll < 0.8 ? 'train' : roll < 0.9 ? 'val' : 'test';
  const drawn = rng.pick(rng.chance(0.5) ? PICTURE_FAMILIES : TEXT_FAMILIES)(rng);
  const order = rng.shuffle(drawn.choices.map((_, i) => i));
  const problem: OfficialProblem = {
    question: drawn.question,
    choices: order.map((i) => drawn.choices[i]!),
    answer: order.indexOf(0),
    hint: drawn.hint ?? '',
    image: drawn.scene ? 'image.png' : null,
    task: 'closed choice',
    grade: drawn.grade,
    subject: drawn.subject,
    topic: drawn.topic,
    category: drawn.category,
    skill: drawn.skill,
    lecture: drawn.lecture,
    solution: drawn.solution,
    split,
  };
  return { pid: String(index + 1), problem, ...(drawn.scene ? { scene: drawn.scene } : {}) };
}

// ---- pictures -------------------------------------------------------------------------------------------------

const VISUAL = { subject: 'natural science', topic: 'visual-reasoning', category: 'Reading pictures' };
const PICTURE_LECTURE =
  'A picture can show objects and how they are arranged. Look at the shape and color of each object, count the objects, and notice where each one is: on the left or the right, near the top or the bottom.';

const plural = (shape: Shape, n: number) => (n === 1 ? shape : `${shape}s`);

/** A picture of 256-384 px a side whose objects sit in distinct cells of a grid, jittered inside them. */
function sceneOf(rng: Rng, items: { shape: Shape; colour: Colour; cell?: [number, number] }[], grid: [number, number] = [3, 3]): Scene {
  const width = rng.int(256, 384);
  const height = rng.int(256, 384);
  const background: RGB = [rng.int(235, 255), rng.int(235, 255), rng.int(235, 255)];
  const [cols, rows] = grid;
  const free = rng.shuffle(Array.from({ length: cols * rows }, (_, i) => [i % cols, Math.floor(i / cols)] as [number, number]));
  const used = new Set(items.flatMap((item) => (item.cell ? [item.cell.join()] : [])));
  const cellW = width / cols;
  const cellH = height / rows;
  const objects = items.map((item) => {
    const cell = item.cell ?? free.find((c) => !used.has(c.join()))!;
    used.add(cell.join());
    const size = rng.uniform(0.55, 0.8) * Math.min(cellW, cellH);
    const slackX = (cellW - size) / 2;
    const slackY = (cellH - size) / 2;
    return {
      shape: item.shape,
      colour: item.colour,
      rgb: COLOURS[item.colour].map((c) => Math.max(0, Math.min(255, c + rng.int(-12, 12)))) as unknown as RGB,
      cx: Math.round((cell[0] + 0.5) * cellW + rng.uniform(-slackX, slackX)),
      cy: Math.round((cell[1] + 0.5) * cellH + rng.uniform(-slackY, slackY)),
      size: Math.round(size),
    };
  });
  return { width, height, background, objects };
}

function pictureProblem(rng: Rng, fields: Pick<Drawn, 'question' | 'choices' | 'solution' | 'skill' | 'scene'>): Drawn {
  return { ...fields, lecture: PICTURE_LECTURE, grade: `grade${rng.int(1, 4)}`, ...VISUAL };
}

/** Other options from `pool`, `count` of them, none equal to `answer`. */
function others<T>(rng: Rng, pool: readonly T[], answer: T, count: number): T[] {
  return rng.sample(pool.filter((x) => x !== answer), count);
}

const colourOf: Family = (rng) => {
  const shapes = rng.sample(SHAPES, rng.int(2, 4));
  const colours = shapes.map(() => rng.pick(COLOUR_NAMES));
  const target = rng.int(0, shapes.length - 1);
  const answer = colours[target]!;
  return pictureProblem(rng, {
    question: `What color is the ${shapes[target]}?`,
    choices: [answer, ...others(rng, COLOUR_NAMES, answer, rng.int(1, 3))],
    solution: `Look at the picture. The ${shapes[target]} is ${answer}.`,
    skill: 'Identify colors',
    scene: sceneOf(rng, shapes.map((shape, i) => ({ shape, colour: colours[i]! }))),
  });
};

const shapeOf: Family = (rng) => {
  const colours = rng.sample(COLOUR_NAMES, rng.int(2, 4));
  const shapes = colours.map(() => rng.pick(SHAPES));
  const target = rng.int(0, colours.length - 1);
  const answer = shapes[target]!;
  return pictureProblem(rng, {
    question: `Which shape is ${colours[target]}?`,
    choices: [answer, ...others(rng, SHAPES, answer, rng.int(1, 3))],
    solution: `Look at the picture. The ${colours[target]} shape is a ${answer}.`,
    skill: 'Identify shapes',
    scene: sceneOf(rng, colours.map((colour, i) => ({ shape: shapes[i]!, colour }))),
  });
};

const countOf: Family = (rng) => {
  const [shape, ...rest] = rng.sample(SHAPES, 3) as [Shape, Shape, Shape];
  const count = rng.int(1, 6);
  const extra = rng.int(0, 3);
  const items = [
    ...Array.from({ length: count }, () => ({ shape, colour: rng.pick(COLOUR_NAMES) })),
    ...Array.from({ length: extra }, () => ({ shape: rng.pick(rest), colour: rng.pick(COLOUR_NAMES) })),
  ];
  const numbers = [1, 2, 3, 4, 5, 6, 7];
  return pictureProblem(rng, {
    question: `How many ${shape}s are there?`,
    choices: [count, ...others(rng, numbers.filter((n) => Math.abs(n - count) <= 3), count, rng.int(1, 3))].map(String),
    solution: `Count the ${shape}s in the picture. There ${count === 1 ? 'is' : 'are'} ${count} ${plural(shape, count)}.`,
    skill: 'Count objects',
    scene: sceneOf(rng, items, [4, 3]),
  });
};

const positionOf: Family = (rng) => {
  const shapes = rng.sample(SHAPES, 2);
  const colours = rng.sample(COLOUR_NAMES, 2);
  const [a, b] = [`${colours[0]} ${shapes[0]}`, `${colours[1]} ${shapes[1]}`];
  const horizontal = rng.chance(0.5);
  // The relation as the solution writes it, and as a choice.
  const [near, far] = horizontal ? ['to the left of', 'to the right of'] : ['above', 'below'];
  const choice = (relation: string) => relation.replace(/ of$/, '');
  // Object a's cell comes first along the axis when aFirst: left of b, or above it.
  const aFirst = rng.chance(0.5);
  const along = rng.sample([0, 1, 2], 2).sort((x, y) => x - y);
  const [first, second] = [along[0]!, along[1]!];
  const across = [rng.int(0, 2), rng.int(0, 2)];
  const cellA: [number, number] = horizontal ? [aFirst ? first : second, across[0]!] : [across[0]!, aFirst ? first : second];
  const cellB: [number, number] = horizontal ? [aFirst ? second : first, across[1]!] : [across[1]!, aFirst ? second : first];
  const answer = aFirst ? near : far;
  return pictureProblem(rng, {
    question: horizontal ? `Is the ${a} to the left or to the right of the ${b}?` : `Is the ${a} above or below the ${b}?`,
    choices: [choice(answer), choice(aFirst ? far : near)],
    solution: `Look at the picture. The ${a} is ${answer} the ${b}.`,
    skill: 'Describe positions',
    scene: sceneOf(rng, [{ shape: shapes[0]!, colour: colours[0]!, cell: cellA }, { shape: shapes[1]!, colour: colours[1]!, cell: cellB }]),
  });
};

const moreOf: Family = (rng) => {
  const [s1, s2] = rng.sample(SHAPES, 2) as [Shape, Shape];
  const [n1, n2] = rng.sample([1, 2, 3, 4, 5], 2) as [number, number];
  const more = n1 > n2 ? s1 : s2;
  const items = [
    ...Array.from({ length: n1 }, () => ({ shape: s1, colour: rng.pick(COLOUR_NAMES) })),
    ...Array.from({ length: n2 }, () => ({ shape: s2, colour: rng.pick(COLOUR_NAMES) })),
  ];
  return pictureProblem(rng, {
    question: `Are there more ${s1}s or ${s2}s?`,
    choices: [`${more}s`, `${more === s1 ? s2 : s1}s`],
    solution: `Count each shape. There ${n1 === 1 ? 'is' : 'are'} ${n1} ${plural(s1, n1)} and ${n2} ${plural(s2, n2)}. ${Math.max(n1, n2)} is more than ${Math.min(n1, n2)}, so there are more ${more}s.`,
    skill: 'Compare numbers of objects',
    scene: sceneOf(rng, items, [4, 3]),
  });
};

/** The picture as PNG bytes: each object in its colour with a darker outline, on a light background. */
export async function renderScene(scene: Scene): Promise<Uint8Array> {
  const rgb = (c: RGB, f = 1) => `rgb(${c.map((v) => Math.round(v * f)).join(',')})`;
  const shapes = scene.objects.map(({ shape, rgb: colour, cx, cy, size }) => {
    const style = `fill="${rgb(colour)}" stroke="${rgb(colour, 0.6)}" stroke-width="2"`;
    const h = size / 2;
    switch (shape) {
      case 'circle':
        return `<circle cx="${cx}" cy="${cy}" r="${h}" ${style}/>`;
      case 'square':
        return `<rect x="${cx - h}" y="${cy - h}" width="${size}" height="${size}" ${style}/>`;
      case 'triangle':
        return `<polygon points="${cx},${cy - h} ${cx + h},${cy + h} ${cx - h},${cy + h}" ${style}/>`;
      case 'diamond':
        return `<polygon points="${cx},${cy - h} ${cx + h * 0.75},${cy} ${cx},${cy + h} ${cx - h * 0.75},${cy}" ${style}/>`;
      case 'star': {
        const points = Array.from({ length: 10 }, (_, i) => {
          const radius = i % 2 === 0 ? h : h * 0.45;
          const angle = -Math.PI / 2 + (i * Math.PI) / 5;
          return `${(cx + radius * Math.cos(angle)).toFixed(1)},${(cy + radius * Math.sin(angle)).toFixed(1)}`;
        });
        return `<polygon points="${points.join(' ')}" ${style}/>`;
      }
    }
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}"><rect width="100%" height="100%" fill="${rgb(scene.background)}"/>${shapes.join('')}</svg>`;
  const png = await sharp(Buffer.from(svg), { density: 72 }).removeAlpha().png({ compressionLevel: 9 }).toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}

// ---- text only ------------------------------------------------------------------------------------------------

const DICTIONARY_WORDS = [
  'acorn', 'actor', 'apple', 'arrow', 'badge', 'baker', 'beach', 'bell', 'berry', 'blanket', 'boat', 'brick', 'bridge', 'button',
  'cabin', 'candle', 'canoe', 'carpet', 'castle', 'cherry', 'chimney', 'cloud', 'coin', 'comet', 'cookie', 'crayon', 'daisy', 'desert',
  'dinner', 'doctor', 'dragon', 'drum', 'eagle', 'engine', 'fabric', 'farmer', 'feather', 'fence', 'finger', 'forest', 'fossil', 'garden',
  'giant', 'glove', 'grape', 'guitar', 'hammer', 'harbor', 'helmet', 'honey', 'horse', 'island', 'jacket', 'jungle', 'kettle', 'kitten',
  'ladder', 'lemon', 'library', 'lizard', 'magnet', 'marble', 'meadow', 'mitten', 'monkey', 'muffin', 'needle', 'nest', 'noodle', 'ocean',
  'orange', 'otter', 'paddle', 'pencil', 'pepper', 'pillow', 'planet', 'pocket', 'puzzle', 'rabbit', 'rocket', 'saddle', 'shadow', 'silver',
  'spider', 'stone', 'summer', 'table', 'ticket', 'tiger', 'tunnel', 'turtle', 'valley', 'velvet', 'wagon', 'window', 'winter', 'yarn', 'zebra',
].sort();

const REFERENCE = { subject: 'language science', topic: 'reference-skills', category: 'Reference skills' };

const guideWords: Family = (rng) => {
  // Guide words at least three entries apart, so a word lies between them.
  const start = rng.int(0, DICTIONARY_WORDS.length - 4);
  const end = rng.int(start + 2, Math.min(DICTIONARY_WORDS.length - 1, start + 12));
  const [first, last] = [DICTIONARY_WORDS[start]!, DICTIONARY_WORDS[end]!];
  const inside = DICTIONARY_WORDS[rng.int(start + 1, end - 1)]!;
  const outside = rng.pick(DICTIONARY_WORDS.filter((_, i) => i < start || i > end));
  return {
    question: `Which word would you find on a dictionary page with the following guide words?\n${first} - ${last}`,
    choices: [inside, outside],
    lecture:
      'Guide words appear on each page of a dictionary. They tell you the first word and last word on the page. The other words on the page come between the guide words in alphabetical order.\n' +
      'To put words in alphabetical order, put them in order by their first letters. If the first letters are the same, look at the second letters. If the second letters are the same, look at the third letters, and so on.',
    solution: `Put the words in alphabetical order.\nSince ${inside} is between the guide words ${first} - ${last}, it would be found on that page.`,
    grade: `grade${rng.int(2, 5)}`,
    skill: 'Use guide words',
    ...REFERENCE,
  };
};

const alphabetical: Family = (rng) => {
  const words = rng.sample(DICTIONARY_WORDS, rng.int(2, 3));
  const sorted = [...words].sort();
  return {
    question: 'Which word comes first in alphabetical order?',
    choices: [sorted[0]!, ...words.filter((w) => w !== sorted[0])],
    lecture:
      'When words are in alphabetical order, they are in the order of the alphabet. To put words in alphabetical order, look at the first letter of each word. If the first letters are the same, look at the second letters, and so on.',
    solution: `Put the words in alphabetical order: ${sorted.join(', ')}.\nSo, ${sorted[0]} comes first.`,
    grade: `grade${rng.int(1, 3)}`,
    skill: 'Use alphabetical order',
    ...REFERENCE,
  };
};

const magnets: Family = (rng) => {
  const [p1, p2] = [rng.pick(['north', 'south']), rng.pick(['north', 'south'])];
  const attract = p1 !== p2;
  return {
    question: 'Will these magnets attract or repel each other?',
    choices: attract ? ['attract', 'repel'] : ['repel', 'attract'],
    hint: `Two bar magnets lie end to end. The ${p1} pole of one magnet faces the ${p2} pole of the other magnet.`,
    lecture:
      'Magnets can pull or push on each other without touching. When magnets attract, they pull together. When magnets repel, they push apart.\n' +
      'Whether a magnet attracts or repels other magnets depends on the positions of its poles, or ends. Every magnet has two poles, called north and south.\n' +
      'If different poles are closest to each other, the magnets attract. If the same poles are closest to each other, the magnets repel.',
    solution:
      `To predict if these magnets will attract or repel, look at which poles are closest to each other.\n` +
      `The ${p1} pole of one magnet is closest to the ${p2} pole of the other magnet. ${attract ? 'Different poles attract' : 'Like poles repel'}. So, these magnets will ${attract ? 'attract' : 'repel'} each other.`,
    grade: `grade${rng.int(2, 6)}`,
    subject: 'natural science',
    topic: 'physics',
    category: 'Magnets',
    skill: 'Predict magnetic forces',
  };
};

/** Objects and their plurals. */
const THERMAL_OBJECTS: [string, string][] = [
  ['cup of tea', 'cups of tea'], ['bowl of soup', 'bowls of soup'], ['glass of water', 'glasses of water'], ['pot of water', 'pots of water'],
  ['mug of cocoa', 'mugs of cocoa'], ['bottle of juice', 'bottles of juice'], ['brick', 'bricks'], ['metal spoon', 'metal spoons'], ['rock', 'rocks'],
];

const thermalEnergy: Family = (rng) => {
  const [object, objects] = rng.pick(THERMAL_OBJECTS);
  const mass = rng.pick([100, 150, 200, 250, 300, 400, 500]);
  const [hot, cold] = rng.sample(Array.from({ length: 19 }, (_, i) => 5 * (i + 1)), 2).sort((a, b) => b - a) as [number, number];
  const more = rng.chance(0.5);
  const describe = (t: number) => `a ${mass}-gram ${object} at ${t}°C`;
  return {
    question: `Which object has ${more ? 'more' : 'less'} thermal energy?`,
    choices: more ? [describe(hot), describe(cold)] : [describe(cold), describe(hot)],
    hint: 'The objects are identical except for their temperatures.',
    lecture:
      'The temperature of an object depends on its thermal energy. An object with more thermal energy has a higher temperature. Two objects made of the same material and of the same mass differ in thermal energy only through their temperatures.',
    solution:
      `The two ${objects} are made of the same material and have the same mass. So, the ${object} with the ${more ? 'higher' : 'lower'} temperature has ${more ? 'more' : 'less'} thermal energy.\n` +
      `${more ? hot : cold}°C is ${more ? 'higher' : 'lower'} than ${more ? cold : hot}°C, so the ${object} at ${more ? hot : cold}°C has ${more ? 'more' : 'less'} thermal energy.`,
    grade: `grade${rng.int(5, 8)}`,
    subject: 'natural science',
    topic: 'physics',
    category: 'Thermal energy',
    skill: 'Compare thermal energy',
  };
};

const ANIMALS: Record<string, { members: string[]; trait: string }> = {
  mammal: { members: ['dog', 'cat', 'horse', 'cow', 'whale', 'bat', 'rabbit', 'elephant', 'lion', 'mouse', 'dolphin', 'bear', 'sheep', 'goat', 'fox'], trait: 'Mammals have hair or fur and feed their young milk.' },
  bird: { members: ['eagle', 'owl', 'robin', 'penguin', 'parrot', 'duck', 'chicken', 'swan', 'crow', 'ostrich'], trait: 'Birds have feathers, two wings, and a beak.' },
  fish: { members: ['salmon', 'shark', 'trout', 'goldfish', 'tuna', 'clownfish', 'catfish'], trait: 'Fish live underwater. They have fins, not limbs.' },
  reptile: { members: ['snake', 'lizard', 'turtle', 'crocodile', 'iguana', 'gecko', 'alligator'], trait: 'Reptiles have scaly, waterproof skin.' },
  amphibian: { members: ['frog', 'toad', 'salamander', 'newt'], trait: 'Amphibians have moist skin and begin their lives in water.' },
  insect: { members: ['ant', 'bee', 'butterfly', 'beetle', 'grasshopper', 'ladybug', 'dragonfly'], trait: 'Insects have six legs and three body parts.' },
};
const article = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

const animalClass: Family = (rng) => {
  const classes = Object.keys(ANIMALS);
  const [target, ...rest] = rng.sample(classes, rng.int(2, 3));
  const answer = rng.pick(ANIMALS[target!]!.members);
  const wrong = rest.map((c) => rng.pick(ANIMALS[c]!.members));
  return {
    question: `Select the ${target}.`,
    choices: [answer, ...wrong],
    lecture: `Scientists sort animals with similar traits into groups called classes. ${classes.map((c) => ANIMALS[c]!.trait).join(' ')}`,
    solution: [`${capitalise(article(answer))} is ${article(target!)}. ${ANIMALS[target!]!.trait}`, ...wrong.map((w, i) => `${capitalise(article(w))} is ${article(rest[i]!)}.`)].join('\n'),
    grade: `grade${rng.int(2, 5)}`,
    subject: 'natural science',
    topic: 'biology',
    category: 'Classification',
    skill: 'Identify animal classes',
  };
};

const MATTER: Record<string, { members: string[]; property: string }> = {
  solid: { members: ['rock', 'wood', 'ice cube', 'coin', 'pencil', 'brick', 'book', 'spoon'], property: 'A solid has a size and shape of its own.' },
  liquid: { members: ['milk', 'water in a glass', 'apple juice', 'vinegar', 'olive oil', 'rain'], property: 'A liquid has a size of its own but takes the shape of its container.' },
  gas: { members: ['steam', 'air inside a balloon', 'oxygen', 'helium', 'carbon dioxide'], property: 'A gas expands to fill all the space in its container.' },
};

const statesOfMatter: Family = (rng) => {
  const states = Object.keys(MATTER);
  const target = rng.pick(states);
  const answer = rng.pick(MATTER[target]!.members);
  const wrongStates = states.filter((s) => s !== target);
  const wrong = rng.sample(wrongStates, rng.int(1, 2)).map((s) => ({ state: s, member: rng.pick(MATTER[s]!.members) }));
  return {
    question: `Select the ${target}.`,
    choices: [answer, ...wrong.map((w) => w.member)],
    lecture: `Solid, liquid, and gas are states of matter. ${states.map((s) => MATTER[s]!.property).join(' ')}`,
    solution: [`${capitalise(answer)} is ${article(target)}. ${MATTER[target]!.property}`, ...wrong.map((w) => `${capitalise(w.member)} is ${article(w.state)}.`)].join('\n'),
    grade: `grade${rng.int(2, 4)}`,
    subject: 'natural science',
    topic: 'chemistry',
    category: 'States of matter',
    skill: 'Identify solids, liquids, and gases',
  };
};

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const PICTURE_FAMILIES: Family[] = [colourOf, shapeOf, countOf, positionOf, moreOf];
const TEXT_FAMILIES: Family[] = [guideWords, alphabetical, magnets, thermalEnergy, animalClass, statesOfMatter];
