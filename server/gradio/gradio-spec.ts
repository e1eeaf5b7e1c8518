/**
 * What the studio tells Gradio clients about itself: the app config (`GET /config`) and the API
 * description (`GET /gradio_api/info`). Both describe one endpoint, `/predict`, as a Gradio
 * Interface would: an Image in; a Textbox (the caption) and an Image (the result picture, one
 * attention overlay per word) out. It is a generator, so clients see the caption grow word by word.
 *
 * Only the fields that `@gradio/client` (JavaScript) and `gradio_client` (Python) read are
 * filled with meaning; the rest hold the neutral values a plain Gradio app would send, so clients
 * that copy them around find what they expect.
 */

/** Gradio 5 introduced the `/gradio_api` prefix and `sse_v3`; the clients switch on these. */
export const GRADIO_VERSION = "5.0.0";
export const API_PREFIX = "/gradio_api";
export const PROTOCOL = "sse_v3";
/** The one endpoint; clients call it as "/predict" (fn_index 0). */
export const API_NAME = "predict";
export const FN_INDEX = 0;

/** Component ids in the config; the dependency points at them. */
const INPUT_ID = 1;
const CAPTION_ID = 2;
const PICTURE_ID = 3;

/** JSON schema of a Gradio image value (a FileData), as gradio's ImageData model describes it. */
const IMAGE_SCHEMA = Object.freeze({
  title: "ImageData",
  type: "object",
  description: "A file uploaded to /gradio_api/upload, a /gradio_api/file= URL of this server, or a base64 data URL.",
  properties: {
    path: { anyOf: [{ type: "string" }, { type: "null" }], default: null, description: "Path returned by /gradio_api/upload", title: "Path" },
    url: { anyOf: [{ type: "string" }, { type: "null" }], default: null, description: "A /gradio_api/file= URL of this server, or a base64 data URL", title: "Url" },
    size: { anyOf: [{ type: "integer" }, { type: "null" }], default: null, description: "Size of image in bytes", title: "Size" },
    orig_name: { anyOf: [{ type: "string" }, { type: "null" }], default: null, description: "Original filename", title: "Orig Name" },
    mime_type: { anyOf: [{ type: "string" }, { type: "null" }], default: null, description: "mime type of image", title: "Mime Type" },
    is_stream: { default: false, description: "Can always be set to False", title: "Is Stream", type: "boolean" },
    meta: { default: { _type: "gradio.FileData" }, title: "Meta", type: "object" },
  },
});

const TEXT_SCHEMA = Object.freeze({ type: "string" });

export interface SpecOptions {
  title: string;
  /** Largest upload, bytes (clients check it before uploading). */
  maxFileSize: number;
}

export interface GradioSpec {
  /** Changes each time the server starts. */
  readonly appId: number;
  /** The app config for `GET /config`; `root` is this server's public URL as the caller sees it. */
  config(root: string): Record<string, unknown>;
  /** The API description for `GET /gradio_api/info`. */
  info(): Record<string, unknown>;
}

function component(id: number, type: string, label: string, apiInfo: object, props: Record<string, unknown> = {}) {
  return {
    id,
    type,
    props: { label, name: type, visible: true, interactive: id === INPUT_ID, show_label: true, elem_id: null, elem_classes: [], ...props },
    api_info: apiInfo,
    skip_api: false,
    component_class_id: type,
    key: null,
  };
}

export function gradioSpec({ title, maxFileSize }: SpecOptions): GradioSpec {
  // A new id each start, as Gradio does: clients use it to notice that the app was restarted.
  const appId = Math.floor(Math.random() * 2 ** 48);
  const components = [
    component(INPUT_ID, "image", "Photo", IMAGE_SCHEMA, { type: "filepath", sources: ["upload", "clipboard"] }),
    component(CAPTION_ID, "textbox", "Caption", TEXT_SCHEMA, { lines: 1 }),
    component(PICTURE_ID, "image", "Attention", IMAGE_SCHEMA, { type: "filepath", format: "png" }),
  ];
  const dependency = {
    id: FN_INDEX,
    targets: [[INPUT_ID, "upload"]],
    inputs: [INPUT_ID],
    outputs: [CAPTION_ID, PICTURE_ID],
    api_name: API_NAME,
    api_visibility: "public",
    show_api: true, // the field older clients read instead of api_visibility
    backend_fn: true,
    js: null,
    queue: true,
    types: { generator: true, cancel: false },
    connection: "sse",
    trigger: "upload",
    trigger_mode: "once",
    trigger_after: null,
    trigger_only_on_success: false,
    trigger_only_on_failure: false,
    batch: false,
    max_batch_size: 4,
    cancels: [],
    every: null,
    collects_event_data: false,
    scroll_to_output: false,
    show_progress: "full",
    show_progress_on: null,
    time_limit: null,
    stream_every: 0.5,
    like_user_message: false,
    event_specific_args: [],
    component_prop_inputs: [],
    js_implementation: null,
    final_event: null,
    rendered_in: null,
    render_id: null,
    zerogpu: false,
  };

  const endpoint = {
    description: "Captions a photo. Streams the caption as each word is decoded; the last message adds the result picture (the photo with one attention overlay per word).",
    api_visibility: "public",
    parameters: [
      {
        label: "Photo",
        parameter_name: "image",
        parameter_has_default: false,
        parameter_default: null,
        type: IMAGE_SCHEMA,
        python_type: { type: "filepath", description: "" },
        component: "Image",
        example_input: { path: "photo.jpg", orig_name: "photo.jpg", meta: { _type: "gradio.FileData" } },
      },
    ],
    returns: [
      { label: "Caption", type: TEXT_SCHEMA, python_type: { type: "str", description: "" }, component: "Textbox" },
      { label: "Attention", type: IMAGE_SCHEMA, python_type: { type: "filepath", description: "" }, component: "Image" },
    ],
  };
  const info = Object.freeze({ named_endpoints: { [`/${API_NAME}`]: endpoint }, unnamed_endpoints: {} });

  return {
    appId,
    config(root) {
      return {
        version: GRADIO_VERSION,
        api_prefix: API_PREFIX,
        protocol: PROTOCOL,
        root,
        app_id: appId,
        mode: "interface",
        title,
        enable_queue: true,
        // Only needed for per-session state, which the studio has none of.
        connect_heartbeat: false,
        max_file_size: maxFileSize,
        components,
        dependencies: [dependency],
        layout: { id: 0, children: components.map((c) => ({ id: c.id })) },
        page: { "": { components: components.map((c) => c.id), dependencies: [FN_INDEX], layout: { id: 0, children: components.map((c) => ({ id: c.id })) } } },
        pages: [["", "Home", true]],
        current_page: "",
        dev_mode: false,
        vibe_mode: false,
        analytics_enabled: false,
        show_error: true,
        is_space: false,
        is_colab: false,
        space_id: null,
        username: null,
        theme: "default",
        css: null,
        js: null,
        head: null,
        stylesheets: [],
        footer_links: ["api"],
        fill_height: false,
        fill_width: false,
        auth_message: "",
        i18n_translations: null,
      };
    },
    info() {
      return info;
    },
  };
}
