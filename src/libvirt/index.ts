export * from './builtin-filters.ts';
export * from './compile.ts';
export * from './domain-xml.ts';
export * from './ebtables-translate.ts';
export * from './nwfilter-attrs.ts';
export * from './nwfilter-model.ts';
export * from './nwfilter-xml.ts';
export * from './variables.ts';
export { readXml, type XmlElement } from './xml.ts';
