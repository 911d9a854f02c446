/**
 * The EvalAI answer normalisation of VQA/TextVQA, exactly as EvalAIAnswerProcessor in LLaVA-HR's
 * llava_hr/eval/m4c_evaluator.py applies it (copied there from mmf's pythia/tasks/processors.py).
 */
import { pySplit, pyStrip } from '../text/pytext.js';

// m4c_evaluator.py CONTRACTIONS, including its oddities ("somebody'd" -> "somebodyd"; capitalised keys that
// can never match lower-cased words).
const CONTRACTIONS = new Map<string, string>(Object.entries({
  aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't",
  "couldn'tve": "couldn't've", "couldnt've": "couldn't've", didnt: "didn't", doesnt: "doesn't", dont: "don't",
  hadnt: "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", hasnt: "hasn't", havent: "haven't",
  hed: "he'd", "hed've": "he'd've", "he'dve": "he'd've", hes: "he's", howd: "how'd", howll: "how'll",
  hows: "how's", "Id've": "I'd've", "I'dve": "I'd've", Im: "I'm", Ive: "I've", isnt: "isn't", itd: "it'd",
  "itd've": "it'd've", "it'dve": "it'd've", itll: "it'll", "let's": "let's", maam: "ma'am", mightnt: "mightn't",
  "mightnt've": "mightn't've", "mightn'tve": "mightn't've", mightve: "might've", mustnt: "mustn't",
  mustve: "must've", neednt: "needn't", notve: "not've", oclock: "o'clock", oughtnt: "oughtn't",
  "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", shant: "shan't",
  "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", shouldve: "should've", shouldnt: "shouldn't",
  "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": 'somebodyd',
  "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", somebodyll: "somebody'll",
  somebodys: "somebody's", someoned: "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
  someonell: "someone'll", someones: "someone's", somethingd: "something'd", "somethingd've": "something'd've",
  "something'dve": "something'd've", somethingll: "something'll", thats: "that's", thered: "there'd",
  "thered've": "there'd've", "there'dve": "there'd've", therere: "there're", theres: "there's", theyd: "they'd",
  "theyd've": "they'd've", "they'dve": "they'd've", theyll: "they'll", theyre: "they're", theyve: "they've",
  twas: "'twas", wasnt: "wasn't", "wed've": "we'd've", "we'dve": "we'd've", weve: "we've", werent: "weren't",
  whatll: "what'll", whatre: "what're", whats: "what's", whatve: "what've", whens: "when's", whered: "where'd",
  wheres: "where's", whereve: "where've", whod: "who'd", "whod've": "who'd've", "who'dve": "who'd've",
  wholl: "who'll", whos: "who's", whove: "who've", whyll: "why'll", whyre: "why're", whys: "why's",
  wont: "won't", wouldve: "would've", wouldnt: "wouldn't", "wouldnt've": "wouldn't've",
  "wouldn'tve": "wouldn't've", yall: "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
  "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", youd: "you'd",
  "youd've": "you'd've", "you'dve": "you'd've", youll: "you'll", youre: "you're", youve: "you've",
}));

const NUMBERS = new Map<string, string>(Object.entries({
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5',
  six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
}));

const ARTICLES = new Set(['a', 'an', 'the']);

const PUNCTUATIONS = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];

// COMMA_STRIP: a comma run between digits. Python's \d on str patterns is any Unicode decimal digit.
const COMMA_BETWEEN_DIGITS = /(?<=\p{Nd})(,)+(?=\p{Nd})/u;

/**
 * PERIOD_STRIP is `(?!<=\d)(\.)(?!\d)`: the would-be lookbehind is a lookahead that never blocks, so it removes
 * every period not followed by a digit, and `.sub("", text, re.UNICODE)` passes re.UNICODE (32) as the count:
 * only the first 32 such periods go.
 */
const PERIOD_NOT_BEFORE_DIGIT = /\.(?!\p{Nd})/gu;
const PERIOD_STRIP_COUNT = 32;

function wordTokenize(word: string): string {
  return pyStrip(word.toLowerCase().replaceAll(',', '').replaceAll('?', '').replaceAll("'s", " 's"));
}

function processPunctuation(inText: string): string {
  let outText = inText;
  for (const p of PUNCTUATIONS) {
    // The condition looks at the input text, not at the text as already rewritten.
    if (inText.includes(p + ' ') || inText.includes(' ' + p) || COMMA_BETWEEN_DIGITS.test(inText)) {
      outText = outText.replaceAll(p, '');
    } else {
      outText = outText.replaceAll(p, ' ');
    }
  }
  let removed = 0;
  return outText.replace(PERIOD_NOT_BEFORE_DIGIT, (period) => (removed++ < PERIOD_STRIP_COUNT ? '' : period));
}

function processDigitArticle(inText: string): string {
  const words = pySplit(inText.toLowerCase())
    .map((word) => NUMBERS.get(word) ?? word)
    .filter((word) => !ARTICLES.has(word));
  return words.map((word) => CONTRACTIONS.get(word) ?? word).join(' ');
}

/** EvalAIAnswerProcessor.__call__: the normalised form under which answers are compared. */
export function normalizeVqaAnswer(answer: string): string {
  let text = wordTokenize(answer);
  text = pyStrip(text.replaceAll('\n', ' ').replaceAll('\t', ' '));
  return processDigitArticle(processPunctuation(text));
}
