/**
 * Every module of the platform, in mount order. Add a module by importing it on its own line in its
 * slot below (one slot per service keeps parallel work from touching the same lines).
 */
import type { Module } from '../module.js';

// slot: links + qr (issue 3)
import { linksModule } from './links.js';
const links: Module[] = [linksModule];

// slot: reports + tlog + MiningLamp (issue 3)
import { reportsModule } from './reports.js';
const reports: Module[] = [reportsModule];

// slot: codes + cli.im (issue 4)
import { codesModule } from './codes.js';
const codes: Module[] = [codesModule];

// slot: ledger + Ulord (issue 5)
import { ledgerModule } from './ledger.js';
const ledger: Module[] = [ledgerModule];

// slot: photos + Fangtang (issue 6)
import { photosModule } from './photos.js';
const photos: Module[] = [photosModule];

// slot: objects + BQP (issue 7)
import { objectsModule } from './objects.js';
const objects: Module[] = [objectsModule];

// slot: console (issue 8)
import { consoleModule } from './console.js';
import { usageModule } from './usage.js';
const consoleUi: Module[] = [consoleModule, usageModule];

export const MODULES: readonly Module[] = [...links, ...reports, ...codes, ...ledger, ...photos, ...objects, ...consoleUi];
