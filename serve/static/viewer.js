// The 3D head viewer: loads the page's head.glb (data-glb, the API's file route) with three.js, frames
// the head, and drives its ARKit morph targets and head bone from four sliders. window.headViewer
// reports what loaded (for tests and for anyone scripting the page).
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const SLIDERS = {  // slider id -> the morph targets it sets
  smile: ['mouthSmileLeft', 'mouthSmileRight'],
  jaw: ['jawOpen'],
  blink: ['eyeBlinkLeft', 'eyeBlinkRight'],
};
const TURN_BONES = ['head', 'neck_01'];  // the first one the GLB has turns with the "Head turn" slider

const state = { loaded: false, error: null, morphNames: [], bones: [], meshes: 0, frames: 0 };
window.headViewer = state;

const stage = document.getElementById('stage');
const message = document.getElementById('message');
const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
renderer.outputColorSpace = THREE.SRGBColorSpace;
stage.appendChild(renderer.domElement);

const scene = new THREE.Scene();
scene.background = new THREE.Color(0xeeeeee);
scene.add(new THREE.HemisphereLight(0xffffff, 0x5a5048, 1.5));
const key = new THREE.DirectionalLight(0xffffff, 1.7);
key.position.set(-0.5, 0.8, 1.0);
scene.add(key);
const camera = new THREE.PerspectiveCamera(26, 1, 0.01, 20);
const controls = new OrbitControls(camera, renderer.domElement);
controls.enableDamping = false;

const morphed = [];  // meshes with morph targets
let turnBone = null, turnRest = null;

function resize() {
  const width = Math.max(stage.clientWidth, 1), height = Math.max(stage.clientHeight, 1);
  renderer.setSize(width, height, false);
  camera.aspect = width / height;
  camera.updateProjectionMatrix();
}

function render() {
  renderer.render(scene, camera);
  state.frames += 1;
}

function setMorph(name, value) {
  for (const mesh of morphed) {
    const index = mesh.morphTargetDictionary[name];
    if (index !== undefined) mesh.morphTargetInfluences[index] = value;
  }
}

function morphValue(name) {
  for (const mesh of morphed) {
    const index = mesh.morphTargetDictionary[name];
    if (index !== undefined) return mesh.morphTargetInfluences[index];
  }
  return 0;
}

function applySlider(id) {
  const value = Number(document.getElementById(id).value);
  if (id === 'turn') {
    if (turnBone) {
      turnBone.quaternion.copy(turnRest).multiply(
        new THREE.Quaternion().setFromAxisAngle(new THREE.Vector3(0, 1, 0), THREE.MathUtils.degToRad(value)));
    }
  } else {
    for (const name of SLIDERS[id]) setMorph(name, value);
  }
  render();
}

// Set a slider from a script (tests): headViewer.set('jaw', 0.8)
state.set = (id, value) => {
  const input = document.getElementById(id);
  input.value = String(value);
  applySlider(id);
};

async function load() {
  const url = JSON.parse(document.body.dataset.glb);
  const gltf = await new GLTFLoader().loadAsync(url);
  const root = gltf.scene;
  scene.add(root);
  const names = new Set();
  root.traverse((object) => {
    if (object.isMesh && object.morphTargetDictionary) {
      morphed.push(object);
      Object.keys(object.morphTargetDictionary).forEach((name) => names.add(name));
    }
    if (object.isBone) state.bones.push(object.name);
    if (object.isMesh) state.meshes += 1;
  });
  state.morphNames = [...names].sort();
  for (const name of TURN_BONES) {
    turnBone = root.getObjectByName(name);
    if (turnBone && turnBone.isBone) break;
    turnBone = null;
  }
  if (turnBone) turnRest = turnBone.quaternion.clone();

  // Frame the head: the turn bone's subtree when there is one (not the shoulders), else everything.
  root.updateMatrixWorld(true);
  const box = new THREE.Box3();
  if (turnBone) {
    const head = new THREE.Vector3().setFromMatrixPosition(turnBone.matrixWorld);
    const whole = new THREE.Box3().setFromObject(root, true);
    const top = whole.max.y, height = Math.max(top - head.y, 0.05);
    box.set(new THREE.Vector3(whole.min.x, head.y - 0.55 * height, whole.min.z), new THREE.Vector3(whole.max.x, top, whole.max.z));
    box.min.x = Math.max(box.min.x, head.x - 0.75 * height);
    box.max.x = Math.min(box.max.x, head.x + 0.75 * height);
  } else {
    box.setFromObject(root, true);
  }
  const centre = box.getCenter(new THREE.Vector3()), size = box.getSize(new THREE.Vector3());
  const distance = 0.62 * Math.max(size.y, size.x) / Math.tan(THREE.MathUtils.degToRad(camera.fov / 2));
  camera.position.set(centre.x, centre.y, centre.z + distance);
  controls.target.copy(centre);
  controls.update();

  // Sliders start at the photo's expression (the GLB's default morph weights).
  for (const [id, targets] of Object.entries(SLIDERS)) {
    const start = targets.reduce((sum, name) => sum + morphValue(name), 0) / targets.length;
    document.getElementById(id).value = String(start);
  }
  for (const id of [...Object.keys(SLIDERS), 'turn']) {
    document.getElementById(id).addEventListener('input', () => applySlider(id));
  }
  message.textContent = '';
  state.loaded = true;
}

resize();
window.addEventListener('resize', () => { resize(); render(); });
controls.addEventListener('change', render);
load().then(render).catch((error) => {
  state.error = String(error);
  message.textContent = `Could not load the head: ${error}`;
});
