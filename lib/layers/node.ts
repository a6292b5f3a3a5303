// Node-only part of the tf.layers layers: model files for model.save / tf.loadLayersModel.
export * from './file-io.js';
