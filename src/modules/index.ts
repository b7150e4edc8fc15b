/**
 * Every module of the platform, in mount order. Add a module by importing it on its own line in its
 * slot below (one slot per service keeps parallel work from touching the same lines).
 */
import type { Module } from '../module.js';

// slot: links + qr (issue 3)
import { linksModule } from './links.js';
const links: Module[] = [linksModule];

// slot: reports + tlog + MiningLamp (issue 3)
const reports: Module[] = [];

// slot: codes + cli.im (issue 4)
import { codesModule } from './codes.js';
const codes: Module[] = [codesModule];

// slot: ledger + Ulord (issue 5)
const ledger: Module[] = [];

// slot: photos + Fangtang (issue 6)
const photos: Module[] = [];

// slot: objects + BQP (issue 7)
const objects: Module[] = [];

// slot: console (issue 8)
const consoleUi: Module[] = [];

export const MODULES: readonly Module[] = [...links, ...reports, ...codes, ...ledger, ...photos, ...objects, ...consoleUi];
