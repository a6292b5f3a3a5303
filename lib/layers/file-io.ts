/**
 * Node only (node:fs; exported from 'soft-moe-workbook/node', lib/node.ts, not from the
 * browser-safe root): save and load tf.layers models as files, the `file://` handler that
 * `@tensorflow/tfjs-node` provides but plain `@tensorflow/tfjs` lacks (tfjs-node cannot be
 * installed here: it downloads libtensorflow at install time).
 *
 *   await model.save(fileIO('build/my-model'));               // writes model.json + weights.bin
 *   const again = await tf.loadLayersModel(fileIO('build/my-model'));
 *
 * The files are tfjs' own "layers-model" format, as tfjs-node writes them: `model.json` holds the
 * topology, the training config and a weights manifest naming `weights.bin`, which holds every
 * weight's bytes in manifest order. `registerFileScheme()` lets `model.save('file://dir')` and
 * `tf.loadLayersModel('file://dir')` use this handler too.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** The file names inside a model folder (those tfjs-node uses). */
export const MODEL_JSON = 'model.json';
/** The weights file inside a model folder. */
export const WEIGHTS_BIN = 'weights.bin';
const FILE_SCHEME = 'file://';

/** The model.json path for a folder, a `.json` file, or either behind `file://`. */
function modelJsonPath(location: string): string {
  if (typeof location !== 'string' || location.length === 0)
    throw new Error(`fileIO needs a folder or a .json path, got ${JSON.stringify(location)}`);
  const p = location.startsWith(FILE_SCHEME) ? location.slice(FILE_SCHEME.length) : location;
  if (p.length === 0)
    throw new Error(`fileIO needs a folder or a .json path after file://, got ${JSON.stringify(location)}`);
  return p.endsWith('.json') ? p : path.join(p, MODEL_JSON);
}

/** Write a file atomically: a temporary name, then rename (a crash leaves no half file). */
async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
}

/**
 * An IOHandler that saves a model to, and loads it from, `location`: a folder (holding
 * model.json and weights.bin) or the path of the model.json itself, with or without `file://`.
 */
export function fileIO(location: string): tf.io.IOHandler {
  const jsonPath = modelJsonPath(location);
  const folder = path.dirname(jsonPath);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileIO saves models with a JSON topology (tf.LayersModel); got a binary (GraphDef) topology');
      }
      const weightData =
        artifacts.weightData == null ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
      };
      if (artifacts.trainingConfig != null) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature != null) modelJson.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata != null) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      await fs.mkdir(folder, { recursive: true });
      // Weights first: a model.json on disk always names complete weights.
      await writeAtomic(path.join(folder, WEIGHTS_BIN), new Uint8Array(weightData));
      await writeAtomic(jsonPath, JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      let text: string;
      try {
        text = await fs.readFile(jsonPath, 'utf8');
      } catch (e) {
        throw new Error(`cannot read the model file ${jsonPath}: ${(e as Error).message}`);
      }
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(text) as tf.io.ModelJSON;
      } catch (e) {
        throw new Error(`${jsonPath} is not valid JSON: ${(e as Error).message}`);
      }
      if (modelJson == null || typeof modelJson !== 'object' || modelJson.modelTopology == null) {
        throw new Error(`${jsonPath} has no modelTopology: it is not a tfjs model.json`);
      }
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          for (const name of group.paths) {
            const file = path.resolve(folder, name);
            if (path.relative(folder, file).startsWith('..') || path.isAbsolute(name)) {
              throw new Error(
                `${jsonPath}: weights file ${JSON.stringify(name)} lies outside the model folder ${folder}`,
              );
            }
            let bytes: Buffer;
            try {
              bytes = await fs.readFile(file);
            } catch (e) {
              throw new Error(`cannot read the weights file ${file} named in ${jsonPath}: ${(e as Error).message}`);
            }
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        const specs = tf.io.getWeightSpecs(manifest);
        const data = tf.io.CompositeArrayBuffer.join(buffers);
        const expected = specs.reduce((sum, s) => sum + weightBytes(s), 0);
        if (data.byteLength !== expected) {
          throw new Error(
            `${jsonPath}: the weights files hold ${data.byteLength} bytes, the manifest describes ${expected}`,
          );
        }
        return [specs, data];
      });
    },
  };
}

/** Bytes of one weight as stored (float32/int32: 4 per value, bool/uint8: 1; quantized: its dtype's). */
function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  if (spec.dtype === 'string') throw new Error(`string weights (${spec.name}) are not supported by fileIO`);
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const perValue = dtype === 'float16' || dtype === 'uint16' ? 2 : dtype === 'bool' || dtype === 'uint8' ? 1 : 4;
  return size * perValue;
}

/**
 * Route `file://` URLs of `model.save` and `tf.loadLayersModel` to `fileIO`. Does nothing if a
 * handler for `file://` exists already (e.g. `@tensorflow/tfjs-node`'s) or was registered here.
 * Returns whether it registered.
 */
export function registerFileScheme(): boolean {
  const probe = `${FILE_SCHEME}probe`;
  if (tf.io.getSaveHandlers(probe).length > 0 || tf.io.getLoadHandlers(probe).length > 0) return false;
  // A router answers null for URLs it does not handle (as tfjs' own routers; its type says IOHandler).
  const route = (url: string | string[]) =>
    typeof url === 'string' && url.startsWith(FILE_SCHEME) ? fileIO(url) : (null as unknown as tf.io.IOHandler);
  tf.io.registerSaveRouter(route);
  tf.io.registerLoadRouter(route);
  return true;
}
