/**
 * The objects the detector knows (COCO's 80 classes, in CenterNet's class order) and the words a
 * caption uses for them. One table serves the detector (labels), the captioner (which words name
 * which detection, which words it may force into a caption) and the object-recall metric, so the
 * three can never disagree about what "names a giraffe" means.
 */

/** COCO's 80 detection classes, index = CenterNet's class id. */
export const COCO_LABELS = [
  "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
  "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
  "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
  "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
  "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
  "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
  "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
  "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
] as const;

/** Objects the recall metric counts beyond the 80 classes (the parts of "dining table", "sports ball", ...). */
const EXTRA_OBJECTS = ["table", "plant", "ball", "bat", "glove", "racket"] as const;

/** Every object the recall metric counts, by its canonical name. */
export const RECALL_OBJECTS: readonly string[] = [...COCO_LABELS, ...EXTRA_OBJECTS];

// Irregular plurals; everything else takes -s or -es.
const PLURALS: Record<string, string[]> = {
  person: ["people", "persons"], knife: ["knives"], skis: ["skis", "ski"], sheep: ["sheep"], mouse: ["mice", "mouses"],
  scissors: ["scissors"], bus: ["buses", "busses"], "hair drier": ["hair driers", "hair dryer", "hair dryers"],
};

/**
 * Other names for an object, as the metric's definition lists them: a caption that says "sofa"
 * names the couch. Each alias takes plurals too.
 */
const ALIASES: Record<string, string[]> = {
  tv: ["television"], couch: ["sofa"], bicycle: ["bike"], airplane: ["plane", "jet"], donut: ["doughnut"],
  "cell phone": ["phone", "cellphone"], motorcycle: ["motorbike"], "hot dog": ["hotdog"], "teddy bear": ["teddy"],
};

/** A phrase's plural forms ("hot dog" -> "hot dogs", "bus" -> "buses"). */
function plurals(phrase: string): string[] {
  if (PLURALS[phrase]) return PLURALS[phrase];
  const words = phrase.split(" ");
  const last = words.pop()!;
  const pl = /(s|x|ch|sh)$/.test(last) ? last + "es" : /[^aeiou]y$/.test(last) ? last.slice(0, -1) + "ies" : last + "s";
  return [[...words, pl].join(" ")];
}

/** Every surface form (a space-joined token sequence) -> the canonical object it names. */
const FORMS: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>();
  for (const obj of RECALL_OBJECTS) {
    for (const name of [obj, ...(ALIASES[obj] ?? [])]) {
      for (const f of [name, ...plurals(name)]) if (!m.has(f)) m.set(f, obj);
    }
  }
  return m;
})();
const LONGEST_FORM = Math.max(...[...FORMS.keys()].map((f) => f.split(" ").length));

/**
 * The objects a tokenised caption names, with the token span of each mention. Longer names win
 * ("hot dog" is a hot dog, not a dog; "teddy bear" is not a bear), and a bare "bat" or "glove" is
 * counted as that extra object.
 */
export function findObjectMentions(tokens: readonly string[]): { object: string; start: number; end: number }[] {
  const out: { object: string; start: number; end: number }[] = [];
  for (let i = 0; i < tokens.length; ) {
    let hit: { object: string; start: number; end: number } | null = null;
    for (let n = Math.min(LONGEST_FORM, tokens.length - i); n >= 1 && !hit; n--) {
      const obj = FORMS.get(tokens.slice(i, i + n).join(" "));
      if (obj) hit = { object: obj, start: i, end: i + n };
    }
    if (hit) {
      out.push(hit);
      i = hit.end;
    } else i++;
  }
  return out;
}

/** The set of objects a tokenised caption names (see findObjectMentions). */
export function namedObjects(tokens: readonly string[]): Set<string> {
  return new Set(findObjectMentions(tokens).map((m) => m.object));
}

/**
 * Which detected class an object word may stand for. The metric's extra objects are parts of a
 * class's name ("table" of "dining table"), so a caption's "table" names a detected dining table.
 */
export const EXTRA_OF: Readonly<Record<string, string>> = {
  table: "dining table", plant: "potted plant", ball: "sports ball", bat: "baseball bat", glove: "baseball glove", racket: "tennis racket",
};

/** The detection class a canonical object name belongs to ("table" -> "dining table"). */
export const classOf = (object: string): string => EXTRA_OF[object] ?? object;

/**
 * The words a caption uses for a detected class, as tokens, when they differ from its label
 * ("dining table" is a "table"); null: never put into a caption from a detection (people are
 * named better by the decoder's own words: man, girl, skier...).
 */
const CAPTION_NAMES: Readonly<Record<string, string | null>> = {
  person: null, "dining table": "table", "potted plant": "plant", "sports ball": "ball", "baseball bat": "bat",
  "baseball glove": "glove", "tennis racket": "racket", "cell phone": "phone", "hair drier": "hair dryer",
};

/** The token sequence a caption uses for a detected class, or null (see CAPTION_NAMES). */
export function captionName(label: string): string[] | null {
  const name = label in CAPTION_NAMES ? CAPTION_NAMES[label] : label;
  return name === null ? null : name.split(" ");
}

/**
 * Words for people. The recall metric counts only "person"/"people" (its definition), but for
 * grounding a "man" is a detected person: hovering it shows the person's box, and a photo with no
 * person detected should not get one.
 */
export const PERSON_WORDS: ReadonlySet<string> = new Set([
  "man", "men", "woman", "women", "boy", "boys", "girl", "girls", "person", "people", "persons", "child", "children",
  "kid", "kids", "lady", "ladies", "guy", "guys", "baby", "toddler", "player", "players", "skier", "skiers", "surfer",
  "surfers", "biker", "bikers", "rider", "riders", "snowboarder", "skateboarder", "skateboarders", "dancer", "dancers",
  "climber", "swimmer", "runner", "runners", "crowd", "couple", "family", "teenager", "teenagers", "adult", "adults",
  "worker", "workers", "cyclist", "cyclists", "mother", "father", "friends", "student", "students", "athlete", "soldier",
  "policeman", "officer", "gentleman", "infant", "youngster", "bicyclist", "motorcyclist", "hiker", "hikers",
]);

/** The detector class a single caption token names, if any ("giraffes" -> "giraffe", "man" -> "person"). */
export function classOfWord(token: string): string | null {
  if (PERSON_WORDS.has(token)) return "person";
  const m = findObjectMentions([token]);
  return m.length ? classOf(m[0].object) : null;
}
